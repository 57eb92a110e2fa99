#!/usr/bin/env bash
# What access control costs a request, same run: GET /api/v1/queues on two `app serve`
# processes of the same build,
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
# <= 10%, p99 added <= 1 ms; CORS <= 3% of throughput.
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
for port in $port_gated $port_root $port_cors; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/health/live" >/dev/null && break; sleep 0.1; done
done
gated_url="http://127.0.0.1:$port_gated/api/v1/queues"
root_url="http://127.0.0.1:$port_root/api/v1/queues"
cors_url="http://127.0.0.1:$port_cors/api/v1/queues"
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -H "Origin: $ORIGIN" "$cors_url" -o /dev/null -D - \
  | grep -qi '^access-control-allow-origin:' || { echo "the CORS server does not answer CORS" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $KEY" "$gated_url" -o /dev/null -D - | grep -qi '^ratelimit:' \
  || { echo "the gated server does not count requests" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$root_url" -o /dev/null

# One round: "<requests/s> <p99 ms>"; $3 connections, $4 an extra header.
run() {
  local extra=()
  [ -z "${4:-}" ] || extra=(-H "$4")
  taskset -c $LOAD_CPU wrk -t1 -c"$3" -d"${DURATION}s" --latency -H "Authorization: Bearer $2" \
    "${extra[@]}" "$1" |
    awk '/Requests\/sec/ {rps=$2} /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v} END {print rps, p99}'
}
say "warm-up"
taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $KEY" "$gated_url" >/dev/null
taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $ADMIN_TOKEN" "$root_url" >/dev/null
say "GET /api/v1/queues, $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections"
gated=(); root=(); gated_light=(); root_light=(); cors=()
for _ in $(seq 1 "$ROUNDS"); do
  root+=("$(run "$root_url" "$ADMIN_TOKEN" "$CONNECTIONS")")
  cors+=("$(run "$cors_url" "$ADMIN_TOKEN" "$CONNECTIONS" "Origin: $ORIGIN")")
  gated+=("$(run "$gated_url" "$KEY" "$CONNECTIONS")")
  root_light+=("$(run "$root_url" "$ADMIN_TOKEN" "$LIGHT_CONNECTIONS")")
  gated_light+=("$(run "$gated_url" "$KEY" "$LIGHT_CONNECTIONS")")
done
kill $gated_pid $root_pid $cors_pid 2>/dev/null || true
wait 2>/dev/null || true

mkdir -p bench/results
python3 - "$(IFS=';'; echo "${gated[*]}")" "$(IFS=';'; echo "${root[*]}")" \
  "$(IFS=';'; echo "${gated_light[*]}")" "$(IFS=';'; echo "${root_light[*]}")" "$CONNECTIONS" "$LIGHT_CONNECTIONS" \
  "$(IFS=';'; echo "${cors[*]}")" \
  <<'PY' | tee bench/results/auth.txt
import statistics, sys
def parse(text):
    rounds = [tuple(map(float, r.split())) for r in text.split(";")]
    return statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
gated, root = parse(sys.argv[1]), parse(sys.argv[2])
gated_light, root_light = parse(sys.argv[3]), parse(sys.argv[4])
cors = parse(sys.argv[7])
print("Access control on GET /api/v1/queues (median of rounds)")
print(f"saturated, {sys.argv[5]} connections")
print(f"  root token, no limiter      {root[0]:>10,.0f} req/s   p99 {root[1]:.2f} ms")
print(f"  scoped key + rate limiter   {gated[0]:>10,.0f} req/s   p99 {gated[1]:.2f} ms")
print(f"  root token, CORS + Origin   {cors[0]:>10,.0f} req/s   p99 {cors[1]:.2f} ms")
print(f"light load, {sys.argv[6]} connections")
print(f"  root token, no limiter      {root_light[0]:>10,.0f} req/s   p99 {root_light[1]:.2f} ms")
print(f"  scoped key + rate limiter   {gated_light[0]:>10,.0f} req/s   p99 {gated_light[1]:.2f} ms")
overhead = 1 - gated[0] / root[0]
print(f"throughput overhead {overhead:.1%} (target <= 10%)   p99 added at light load {gated_light[1] - root_light[1]:+.2f} ms (target <= 1 ms)")
print(f"per request: {1e6 / root[0]:.0f} us without the gate, {1e6 / gated[0] - 1e6 / root[0]:+.1f} us with it (server core)")
print(f"CORS layer {1 - cors[0] / root[0]:.1%} of throughput (target <= 3%)")
PY
