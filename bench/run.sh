#!/usr/bin/env bash
# The foundation's benchmarks, each against a baseline measured in the same run:
#   - cold start of `app serve` to its first 200 on /api/health (bare hyper alongside),
#   - idle RSS of every mode (bare hyper alongside),
#   - GET /api/health/live throughput against a bare hyper hello-world (and a bare axum
#     router, to show where the difference goes), rounds interleaved; the servers share
#     one core and wrk has the other, so the figures compare CPU cost per request,
#   - release binary size.
# Usage: bench/run.sh   (ROUNDS=3 DURATION=10 CONNECTIONS=64 STARTUP_RUNS=20 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"

command -v wrk >/dev/null || apt_install wrk

say "building release binaries (app and the bare hyper baseline)"
cargo build --release --locked --bin app --example hello_hyper --example hello_axum 2>&1 | tail -1
APP=target/release/app
HELLO=target/release/examples/hello_hyper
AXUM=target/release/examples/hello_axum

fresh_database switchyard_bench
export REDIS_KEY_PREFIX="bench:"

say "start-up time and idle memory"
figures=$(python3 bench/measure.py "$APP" "$HELLO")

say "throughput: GET /api/health/live vs bare hyper and bare axum, $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections"
# Servers on CPU 1, the load generator on CPU 0: the ratio then compares work per request.
SERVER_CPU=1; LOAD_CPU=0
[ "$(nproc)" -ge 2 ] || { SERVER_CPU=0; LOAD_CPU=0; }
rps() { taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
port_app=18931; port_hello=18932; port_axum=18933
HOST=127.0.0.1 PORT=$port_app LOG_LEVEL=warn taskset -c $SERVER_CPU "$APP" serve >/dev/null 2>&1 & app_pid=$!
taskset -c $SERVER_CPU "$HELLO" $port_hello & hello_pid=$!
taskset -c $SERVER_CPU "$AXUM" $port_axum & axum_pid=$!
trap 'kill $app_pid $hello_pid $axum_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port_app/api/health/live" >/dev/null && break; sleep 0.1; done
for url in "http://127.0.0.1:$port_app/api/health/live" "http://127.0.0.1:$port_hello/" "http://127.0.0.1:$port_axum/"; do
  taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null   # warm-up
done
app_runs=(); hello_runs=(); axum_runs=()
for _ in $(seq 1 "$ROUNDS"); do
  hello_runs+=("$(rps "http://127.0.0.1:$port_hello/")")
  axum_runs+=("$(rps "http://127.0.0.1:$port_axum/")")
  app_runs+=("$(rps "http://127.0.0.1:$port_app/api/health/live")")
done
kill $app_pid $hello_pid $axum_pid 2>/dev/null || true
wait 2>/dev/null || true

app_size=$(stat -c %s "$APP"); hello_size=$(stat -c %s "$HELLO")
mkdir -p bench/results
python3 - "$figures" "${app_runs[*]}" "${hello_runs[*]}" "$app_size" "$hello_size" "${axum_runs[*]}" <<'PY' | tee bench/results/latest.txt
import json, statistics, sys
figures = json.loads(sys.argv[1])
app = [float(x) for x in sys.argv[2].split()]
hello = [float(x) for x in sys.argv[3].split()]
app_size, hello_size = int(sys.argv[4]), int(sys.argv[5])
axum = [float(x) for x in sys.argv[6].split()]
cs = figures["cold_start_ms"]
a, h = cs["app_serve_to_first_200_health"], cs["bare_hyper_to_first_200"]
print("Switchyard foundation benchmarks")
print(f"cold start, app serve -> first 200 on /api/health: p50 {a['p50']} ms, min {a['min']} ms, p90 {a['p90']} ms  (target <= 100 ms)")
print(f"  baseline bare hyper -> first 200:                p50 {h['p50']} ms  (app connects Postgres and Redis first)")
print("idle RSS (MiB)            (target <= 15 MiB each, all and dev included)")
for mode, kib in figures["idle_rss_kib"].items():
    print(f"  {mode:<12} {kib / 1024:6.1f}")
am, hm = statistics.median(app), statistics.median(hello)
print(f"throughput GET /api/health/live: median {am:,.0f} req/s over {len(app)} rounds {app}")
print(f"  bare hyper hello-world:         median {hm:,.0f} req/s over {len(hello)} rounds {hello}")
xm = statistics.median(axum)
print(f"  bare axum router:               median {xm:,.0f} req/s over {len(axum)} rounds {axum}")
print(f"  ratio app / bare hyper: {am / hm:.0%}  (target >= 90%); bare axum / bare hyper: {xm / hm:.0%}; app / bare axum: {am / xm:.0%}")
print(f"release binary (stripped): {app_size / 1048576:.1f} MiB  (target <= 30 MiB); bare hyper {hello_size / 1048576:.1f} MiB")
PY
