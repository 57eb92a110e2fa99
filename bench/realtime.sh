#!/usr/bin/env bash
# The realtime hub against socket.io with @socket.io/redis-adapter (npm, installed by the
# script), the same Redis and the same load generator (bench/realtime/load.rs) in one run:
#   - SOCKETS WebSockets on one server process, all on one channel (socket.io: one room);
#   - the server's RSS per idle socket;
#   - a broadcast at each steady rate in RATES (events per second), DURATION seconds each:
#     delivered messages per second, publish-to-receipt latency p50/p99, and the server's
#     CPU time per delivery;
#   - a broadcast as fast as the sockets receive (16 events under way) for as long:
#     delivered messages per second.
# Events are published over HTTP on both sides and travel through Redis pub/sub (socket.io
# through the Redis emitter, as another process publishes to its replicas). A third run,
# the floor (bench/realtime/floor.rs: bare sends, no Redis), shows the latency this machine
# allows any server at the steady rates.
# Usage: bench/realtime.sh   (SOCKETS=10000 RATES="5 10 20" DURATION=10); figures in
# bench/results/realtime.txt
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
SOCKETS="${SOCKETS:-10000}"
RATES="${RATES:-5 10 20}"
DURATION="${DURATION:-10}"

say "building release binaries (app and the load generator)"
cargo build --release --locked --bin app --example realtime_load --example realtime_floor 2>&1 | tail -1
APP="$PWD/target/release/app"
LOAD="$PWD/target/release/examples/realtime_load"
FLOOR="$PWD/target/release/examples/realtime_floor"
say "installing socket.io and its Redis adapter for the comparison"
(cd bench/realtime && npm install --no-audit --no-fund --silent >/dev/null 2>&1)
fresh_database switchyard_bench_realtime
# Each side holds SOCKETS sockets, and so does the load generator.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((SOCKETS + 500)) ] || { echo "the open-file limit $(ulimit -n) is too low for $SOCKETS sockets" >&2; exit 1; }

export LOG_LEVEL=warn ADMIN_TOKEN="bench-admin-token-0123456789" \
  APP_SECRET="bench-app-secret-0123456789abcdef0123456789" REDIS_KEY_PREFIX="benchrt:" \
  REALTIME_MAX_CONNECTIONS=$((SOCKETS + 100)) REALTIME_CONNECTIONS_PER_IP_PER_MINUTE=100000000
export SOCKETS RATES DURATION
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
wait_for() {
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null -X "$2" "$1" 2>/dev/null && return
    sleep 0.1
  done
  echo "the server did not start" >&2; exit 1
}

say "Switchyard: app realtime with $SOCKETS sockets"
PORT=18093 "$APP" realtime >"$work/realtime.log" 2>&1 &
server=$!
wait_for "http://127.0.0.1:18093/api/health/live" GET
token=$(curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"sub":"bench","channels":["bench"],"ttl_seconds":3600}' \
  http://127.0.0.1:18093/api/v1/realtime/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$LOAD" switchyard 127.0.0.1:18093 "$server" "$token" >"$work/switchyard.json"
kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=""

say "socket.io with @socket.io/redis-adapter, $SOCKETS sockets"
PORT=18094 REDIS_URL="$REDIS_URL" PREFIX="benchrt-socketio" node bench/realtime/socketio.mjs >"$work/socketio.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do grep -q ready "$work/socketio.log" && break; sleep 0.1; done
"$LOAD" socketio 127.0.0.1:18094 "$server" >"$work/socketio.json"
kill "$server"; wait "$server" 2>/dev/null || true; server=""

say "the floor: bare sends to $SOCKETS sockets (bench/realtime/floor.rs), steady rates only"
"$FLOOR" 18095 >"$work/floor.log" 2>&1 &
server=$!
wait_for "http://127.0.0.1:18095/" POST
FLAT_OUT=0 "$LOAD" switchyard 127.0.0.1:18095 "$server" floor >"$work/floor.json"
kill "$server"; wait "$server" 2>/dev/null || true; server=""

python3 - "$work/switchyard.json" "$work/socketio.json" "$work/floor.json" <<'PY' | tee bench/results/realtime.txt
import json, sys
ours, theirs, floor = (json.load(open(p)) for p in sys.argv[1:4])
print(f"realtime: {ours['sockets']} sockets on one process (socket.io: {theirs['sockets']}, floor: {floor['sockets']}), one channel")
print(f"{'':40}{'Switchyard':>12}{'socket.io':>12}{'ratio':>9}{'floor':>10}")
def row(label, a, b, fmt="{:.0f}", better_high=True, bare=None):
    ratio = (a / b if better_high else b / a) if a and b else float("nan")
    bare = "" if bare is None else fmt.format(bare)
    print(f"  {label:38}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>8.2f}x{bare:>10}")
row("RSS per idle socket (bytes)", ours["idle_bytes_per_socket"], theirs["idle_bytes_per_socket"], better_high=False)
row("connect all sockets (s)", ours["connect_seconds"], theirs["connect_seconds"], "{:.1f}", better_high=False)
phases = [(f"steady {a['rate']}/s", a, b, f) for a, b, f in zip(ours["steady"], theirs["steady"], floor["steady"])]
if ours["flat_out"] and theirs["flat_out"]:
    phases.append(("flat out", ours["flat_out"], theirs["flat_out"], {}))
for title, a, b, f in phases:
    row(f"{title}: events published", a["published"], b["published"], bare=f.get("published"))
    row(f"{title}: delivered msgs/s", a["delivered_per_s"], b["delivered_per_s"], bare=f.get("delivered_per_s"))
    pct = lambda p: 100 * p["delivered"] / max(p["expected"], 1) if p else None
    row(f"{title}: delivered / expected %", pct(a), pct(b), "{:.1f}", bare=pct(f))
    row(f"{title}: p50 latency (ms)", a["p50_ms"], b["p50_ms"], "{:.1f}", better_high=False, bare=f.get("p50_ms"))
    row(f"{title}: p99 latency (ms)", a["p99_ms"], b["p99_ms"], "{:.1f}", better_high=False, bare=f.get("p99_ms"))
    row(f"{title}: server CPU per delivery (us)", a["server_cpu_us_per_delivery"], b["server_cpu_us_per_delivery"], "{:.2f}", better_high=False, bare=f.get("server_cpu_us_per_delivery"))
print(f"  sockets the server closed: {ours['closed_by_server']} (socket.io: {theirs['closed_by_server']})")
print("ratios: above 1 favours Switchyard; floor: bare sends from one thread per core, no Redis (bench/realtime/floor.rs)")
PY
