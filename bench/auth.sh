#!/usr/bin/env bash
# What access control costs a request, same run, on three `app serve` processes of one
# build:
#   - "gated": a scoped API key (queues:read) checked on every request, and the rate
#     limiter on (a budget far above the load, so every request is counted in Redis and
#     none is refused),
#   - "root": the admin token and no rate limit,
#   - "cors": the admin token and no rate limit, with CORS on (tower-http's layer) and
#     every request carrying an allowed Origin, so the layer adds its headers each time,
# rounds interleaved. The servers share one core and wrk has the other, so the ratio
# compares work per request. Throughput is measured saturated (CONNECTIONS), latency
# under a light load (LIGHT_CONNECTIONS), where p99 shows the time a request spends in
# the gate rather than in the queue of a saturated server. Targets: throughput overhead
# <= 10%, p99 added <= 1 ms. CORS is measured on the cheapest route (/api/health/live),
# where its cost shows most: target <= 3% of throughput. CPU per request is read from
# /proc for the server and for Redis, which is steadier than throughput on a shared machine.
# Usage: bench/auth.sh   (ROUNDS=5 DURATION=10 CONNECTIONS=64 LIGHT_CONNECTIONS=4)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
LIGHT_CONNECTIONS="${LIGHT_CONNECTIONS:-4}"

command -v wrk >/dev/null || apt_install wrk

say "building the release binary"
cargo build --release --locked --bin app 2>&1 | tail -1
APP=target/release/app

fresh_database switchyard_bench_auth
export REDIS_KEY_PREFIX="benchauth:" LOG_LEVEL=warn
export ADMIN_TOKEN="bench-admin-token-0123456789"
export ENCRYPTION_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
KEY=$("$APP" keys create --name bench --scopes queues:read 2>/dev/null)

SERVER_CPU=1; LOAD_CPU=0
[ "$(nproc)" -ge 2 ] || { SERVER_CPU=0; LOAD_CPU=0; }
port_gated=18961; port_root=18962; port_cors=18963
ORIGIN="https://app.example.com"
HOST=127.0.0.1 PORT=$port_gated RATE_LIMIT_RATE=10000000/s RATE_LIMIT_BURST=10000000 \
  taskset -c $SERVER_CPU "$APP" serve >/dev/null 2>&1 & gated_pid=$!
HOST=127.0.0.1 PORT=$port_root taskset -c $SERVER_CPU "$APP" serve >/dev/null 2>&1 & root_pid=$!
HOST=127.0.0.1 PORT=$port_cors CORS_ALLOWED_ORIGINS=$ORIGIN \
  taskset -c $SERVER_CPU "$APP" serve >/dev/null 2>&1 & cors_pid=$!
trap 'kill $gated_pid $root_pid $cors_pid 2>/dev/null || true' EXIT
for port in $port_gated $port_root $port_cors; do wait_live "$port"; done
gated_url="http://127.0.0.1:$port_gated/api/v1/queues"
root_url="http://127.0.0.1:$port_root/api/v1/queues"
cors_url="http://127.0.0.1:$port_cors/api/v1/queues"
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -H "Origin: $ORIGIN" "$cors_url" -o /dev/null -D - \
  | grep -qi '^access-control-allow-origin:' || { echo "the CORS server does not answer CORS" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $KEY" "$gated_url" -o /dev/null -D - | grep -qi '^ratelimit:' \
  || { echo "the gated server does not count requests" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$root_url" -o /dev/null

# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
REDIS_PID=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | awk -F: '/^process_id/ {print $2+0}')
[ -n "$REDIS_PID" ] && [ -r "/proc/$REDIS_PID/stat" ] || REDIS_PID=""

# One round against the server $pid: "<requests/s> <p99 ms> <server CPU us/request>
# <Redis CPU us/request>"; $2 the token, $3 connections, $5 an extra header.
run() {
  local url=$1 token=$2 connections=$3 pid=$4 extra=()
  [ -z "${5:-}" ] || extra=(-H "$5")
  local before redis_before out
  before=$(ticks "$pid"); redis_before=$([ -n "$REDIS_PID" ] && ticks "$REDIS_PID" || echo 0)
  out=$(taskset -c $LOAD_CPU wrk -t1 -c"$connections" -d"${DURATION}s" --latency \
    -H "Authorization: Bearer $token" "${extra[@]}" "$url")
  local used=$(( ($(ticks "$pid") - before) * TICK_US ))
  local redis_used=$(( ($([ -n "$REDIS_PID" ] && ticks "$REDIS_PID" || echo 0) - redis_before) * TICK_US ))
  echo "$out" | awk -v used="$used" -v redis="$redis_used" '
    /requests in/ {n=$1}
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
    END {print rps, p99, used / n, redis / n}'
}
say "warm-up"
taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $KEY" "$gated_url" >/dev/null
taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $ADMIN_TOKEN" "$root_url" >/dev/null
live_root="http://127.0.0.1:$port_root/api/health/live"
live_cors="http://127.0.0.1:$port_cors/api/health/live"
say "GET /api/v1/queues and /api/health/live, $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections"
gated=(); root=(); gated_light=(); root_light=(); plain_live=(); cors_live=()
for _ in $(seq 1 "$ROUNDS"); do
  root+=("$(run "$root_url" "$ADMIN_TOKEN" "$CONNECTIONS" $root_pid)")
  gated+=("$(run "$gated_url" "$KEY" "$CONNECTIONS" $gated_pid)")
  root_light+=("$(run "$root_url" "$ADMIN_TOKEN" "$LIGHT_CONNECTIONS" $root_pid)")
  gated_light+=("$(run "$gated_url" "$KEY" "$LIGHT_CONNECTIONS" $gated_pid)")
  plain_live+=("$(run "$live_root" "$ADMIN_TOKEN" "$CONNECTIONS" $root_pid)")
  cors_live+=("$(run "$live_cors" "$ADMIN_TOKEN" "$CONNECTIONS" $cors_pid "Origin: $ORIGIN")")
done
kill $gated_pid $root_pid $cors_pid 2>/dev/null || true
wait 2>/dev/null || true

mkdir -p bench/results
joined() { local IFS=';'; echo "$*"; }
python3 - "$(joined "${gated[@]}")" "$(joined "${root[@]}")" "$(joined "${gated_light[@]}")" \
  "$(joined "${root_light[@]}")" "$(joined "${plain_live[@]}")" "$(joined "${cors_live[@]}")" \
  "$CONNECTIONS" "$LIGHT_CONNECTIONS" <<'PY' | tee bench/results/auth.txt
import statistics, sys
def parse(text):
    rounds = [tuple(map(float, r.split())) for r in text.split(";")]
    return tuple(statistics.median(r[i] for r in rounds) for i in range(4))
gated, root, gated_light, root_light, plain_live, cors_live = map(parse, sys.argv[1:7])
connections, light = sys.argv[7], sys.argv[8]
def row(name, m):
    print(f"  {name:<28}{m[0]:>10,.0f} req/s   p99 {m[1]:6.2f} ms   CPU/request: server {m[2]:5.1f} us, Redis {m[3]:5.1f} us")
print("Access control (median of rounds)")
print(f"GET /api/v1/queues, saturated, {connections} connections")
row("root token, no limiter", root)
row("scoped key + rate limiter", gated)
print(f"GET /api/v1/queues, light load, {light} connections")
row("root token, no limiter", root_light)
row("scoped key + rate limiter", gated_light)
print(f"GET /api/health/live, saturated, {connections} connections")
row("no CORS", plain_live)
row("CORS on, allowed Origin", cors_live)
print(f"gate: throughput overhead {1 - gated[0] / root[0]:.1%} (target <= 10%), "
      f"p99 added at light load {gated_light[1] - root_light[1]:+.2f} ms (target <= 1 ms)")
print(f"gate: CPU per request added: server {gated[2] - root[2]:+.1f} us, Redis {gated[3] - root[3]:+.1f} us")
print(f"CORS: throughput {1 - cors_live[0] / plain_live[0]:.1%} of the cheapest route (target <= 3%), "
      f"server CPU per request {cors_live[2] - plain_live[2]:+.1f} us")
PY
