#!/usr/bin/env bash
# The job engine against BullMQ (npm, removeOnComplete on), same Redis, same run:
#   - enqueue over HTTP: wrk with 64 connections against `app serve`, one no-op job per
#     POST /api/v1/jobs and 100 per POST /api/v1/jobs/batch, beside GET /api/health/live on
#     the same server and BullMQ's in-process add (64 in flight), HTTP_ROUNDS rounds of
#     HTTP_SECONDS each, interleaved; every answer must be 202,
#   - enqueue N no-op jobs one call at a time (64 in flight) and in batches of 1000,
#   - drain them with one worker process at concurrency 1, 32 and 128 (jobs/s from the
#     first start to the last finish, from the jobs' own timestamps),
#   - enqueue-to-start latency p50/p99 at a steady RATE jobs/s,
#   - Redis commands per job during a drain (all commands, including those run inside
#     scripts, and the script and blocking calls among them) and the worker's peak RSS,
#   - a crash run: CRASH_N jobs of 50 ms at concurrency 32 (about 16 s of work), the worker
#     killed with SIGKILL CRASH_KILLS times during the drain, 2.2-3 s apart (longer than
#     the 2 s lease, so each kill's stranded jobs are told apart), and restarted at once;
#     lost jobs, jobs run again, how soon the new worker started, how soon stranded jobs
#     ran again.
# Usage: bench/jobs.sh   (N=100000 RATE=10000 STEADY_SECONDS=10 CRASH_N=10000 CRASH_KILLS=5
#                        HTTP_ROUNDS=3 HTTP_SECONDS=8)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
N="${N:-100000}"
RATE="${RATE:-10000}"
STEADY_SECONDS="${STEADY_SECONDS:-10}"
CRASH_N="${CRASH_N:-10000}"
CRASH_KILLS="${CRASH_KILLS:-5}"
HTTP_ROUNDS="${HTTP_ROUNDS:-3}"
HTTP_SECONDS="${HTTP_SECONDS:-8}"
command -v wrk >/dev/null || apt_install wrk

say "building release binaries (app and the benchmark driver)"
cargo build --release --locked --bin app --example jobs_driver 2>&1 | tail -1
APP=target/release/app
DRIVER=target/release/examples/jobs_driver
say "installing BullMQ for the comparison"
(cd bench/jobs && npm install --no-audit --no-fund --silent >/dev/null 2>&1)
BULL="node bench/jobs/bullmq.mjs"

fresh_database switchyard_bench_jobs
export REDIS_KEY_PREFIX="benchjobs:"
export LOG_LEVEL=warn
RCLI="redis-cli -p $REDIS_PORT"
work=$(mktemp -d)
worker_pid=""
trap '[ -n "$worker_pid" ] && kill -9 $worker_pid 2>/dev/null; rm -rf "$work"' EXIT

# Keeps the marker of a clean scan for the old key layout (see src/queue/legacy.rs), as a
# deployment keeps it: each drain measures a worker's steady work, not its first start
# on a fresh Redis.
reset() {
  $RCLI --scan --pattern "benchjobs:*" | { grep -v ':legacy:idem-clean$' || true; } | xargs -r -n 1000 $RCLI DEL >/dev/null
  $BULL reset >/dev/null
}
# Every command Redis ran, those inside scripts included; and script calls (round trips
# that run a script), the rest being plain commands such as BLPOP.
all_calls() { $RCLI INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s}'; }
top_calls() { $RCLI INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_(evalsha|eval|fcall|blpop|bzpopmin|brpoplpush|blmove|bzmpop)/ {s += $3} END {print s+0}'; }
per_job() { python3 -c "print(f'{$1 / $N:.2f}')"; }
peak_rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
start_worker() {
  WORKER_QUEUES=default WORKER_CONCURRENCY="$1" WORKER_LEASE_SECONDS="${2:-15}" "$APP" worker >>"$work/worker.log" 2>&1 &
  worker_pid=$!
}
stop_worker() { kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=""; }

results="$work/results.txt"
record() { echo "$*" | tee -a "$results"; }

say "HTTP enqueue: $HTTP_ROUNDS rounds of ${HTTP_SECONDS}s, 64 connections, beside BullMQ's add"
export ADMIN_TOKEN="bench-admin-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
http_port=18961
HOST=127.0.0.1 PORT=$http_port "$APP" serve >>"$work/serve.log" 2>&1 &
serve_pid=$!
# Each kill may find its process gone already; the trap runs under set -e.
trap '{ [ -z "$worker_pid" ] || kill -9 $worker_pid; kill $serve_pid; } 2>/dev/null || true; rm -rf "$work"' EXIT
wait_live $http_port
# Requests per second from wrk; fails the run when any answer was not a 202.
wrk_rps() {
  local out
  out=$(wrk -t2 -c64 -d"${HTTP_SECONDS}s" "$@")
  if echo "$out" | grep -q '^refused [1-9]'; then echo "$out" >&2; echo "wrk: answers other than 202" >&2; exit 1; fi
  echo "$out" | awk '/Requests\/sec/ {print $2}'
}
url="http://127.0.0.1:$http_port"
for _ in $(seq 1 "$HTTP_ROUNDS"); do
  reset
  single=$(wrk_rps -s bench/jobs/enqueue.lua "$url")
  reset
  batch=$(BATCH=100 wrk_rps -s bench/jobs/enqueue.lua "$url")
  health=$(wrk_rps "$url/api/health/live")
  reset
  bull=$($BULL enqueue "$N" single | json "['jobs_per_s']")
  record "http single=$single batch100=$(python3 -c "print($batch * 100)") health=$health bullmq_add=$bull"
done
kill $serve_pid; wait $serve_pid 2>/dev/null || true

for c in 1 32 128; do
  mode=batch; [ "$c" = 1 ] && mode=single
  say "Switchyard: enqueue $N ($mode), drain at concurrency $c"
  reset
  enq=$("$DRIVER" enqueue "$N" "$mode" "$work/ids")
  a0=$(all_calls); t0=$(top_calls)
  start_worker "$c"
  # Counts read once nothing is pending, before the check of every job adds its own reads.
  "$DRIVER" settle "$work/ids" 900 >/dev/null
  a1=$(all_calls); t1=$(top_calls)
  "$DRIVER" wait "$work/ids" 60 >/dev/null
  rss=$(peak_rss "$worker_pid"); stop_worker
  drain=$("$DRIVER" drain "$work/ids")
  record "switchyard enqueue_$mode $(echo "$enq" | json "['jobs_per_s']")"
  record "switchyard drain_c$c $(echo "$drain" | json "['jobs_per_s']") rss_kib=$rss calls_per_job=$(per_job $((a1 - a0))) script_and_blocking_calls_per_job=$(per_job $((t1 - t0)))"

  say "BullMQ: enqueue $N ($mode), drain at concurrency $c"
  reset
  enq=$($BULL enqueue "$N" "$mode")
  a0=$(all_calls); t0=$(top_calls)
  drain=$($BULL drain "$N" "$c")
  a1=$(all_calls); t1=$(top_calls)
  record "bullmq enqueue_$mode $(echo "$enq" | json "['jobs_per_s']")"
  record "bullmq drain_c$c $(echo "$drain" | json "['jobs_per_s']") rss_kib=$(echo "$drain" | json "['rss_kib']") calls_per_job=$(per_job $((a1 - a0))) script_and_blocking_calls_per_job=$(per_job $((t1 - t0)))"
done

say "latency at $RATE jobs/s for ${STEADY_SECONDS}s, concurrency 32"
reset
start_worker 32
sleep 1
"$DRIVER" steady "$RATE" "$STEADY_SECONDS" "$work/steady" >/dev/null
"$DRIVER" wait "$work/steady" 120 >/dev/null
stop_worker
lat=$("$DRIVER" latency "$work/steady")
record "switchyard latency p50_ms=$(echo "$lat" | json "['p50_ms']") p99_ms=$(echo "$lat" | json "['p99_ms']") max_ms=$(echo "$lat" | json "['max_ms']")"
reset
$BULL latency $(( RATE * STEADY_SECONDS )) 32 >"$work/bull-latency" &
bull_pid=$!
sleep 2
$BULL steady "$RATE" "$STEADY_SECONDS" >/dev/null
wait $bull_pid
lat=$(tail -1 "$work/bull-latency")
record "bullmq latency p50_ms=$(echo "$lat" | json "['p50_ms']") p99_ms=$(echo "$lat" | json "['p99_ms']") max_ms=$(echo "$lat" | json "['max_ms']")"

say "crash run: $CRASH_N jobs of 50 ms, SIGKILL x$CRASH_KILLS during the drain"
reset
SLEEP_MS=50 "$DRIVER" enqueue "$CRASH_N" batch "$work/crash" >/dev/null
: >"$work/kills"
start_worker 32 2
for _ in $(seq 1 "$CRASH_KILLS"); do
  sleep "$(python3 -c 'import random; print(round(random.uniform(2.2, 3.0), 2))')"
  kill -9 "$worker_pid"; wait "$worker_pid" 2>/dev/null || true
  date +%s%3N >>"$work/kills"
  start_worker 32 2
done
"$DRIVER" wait "$work/crash" 300 >/dev/null || true
stop_worker
dead_pg=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM dead_jobs")
crash=$("$DRIVER" crash "$work/crash" "$work/kills" "$dead_pg")
record "crash $crash"

mkdir -p bench/results
python3 - "$results" "$N" "$RATE" <<'PY' | tee bench/results/jobs.txt
import re, statistics, sys
lines = open(sys.argv[1]).read().splitlines()
n, rate = sys.argv[2], sys.argv[3]
fig = {}
for line in lines:
    parts = line.split()
    if parts[0] in ("switchyard", "bullmq"):
        fig[(parts[0], parts[1])] = parts[2:]
print(f"Switchyard job engine vs BullMQ, {n} no-op jobs, one worker process, same Redis")
rounds = [dict(kv.split("=") for kv in line.split()[1:]) for line in lines if line.startswith("http ")]
med = lambda xs: statistics.median(xs)
col = lambda k: [float(r[k]) for r in rounds]
print(f"HTTP enqueue, 64 connections, median of {len(rounds)} rounds (ratios: median of each round's):")
print(f"  one job per request  {med(col('single')):>9,.0f} jobs/s   BullMQ add {med(col('bullmq_add')):>9,.0f} jobs/s   "
      f"ratio {med([float(r['single']) / float(r['bullmq_add']) for r in rounds]):4.2f}x  (target >= 2x)")
print(f"  /api/health/live     {med(col('health')):>9,.0f} req/s    enqueue / health "
      f"{med([float(r['single']) / float(r['health']) for r in rounds]):.0%}  (target >= 35%)")
print(f"  100 jobs per request {med(col('batch100')):>9,.0f} jobs/s  (target >= 150,000)")
for phase in ["enqueue_single", "enqueue_batch"]:
    s, b = float(fig[("switchyard", phase)][0]), float(fig[("bullmq", phase)][0])
    print(f"{phase:<16} switchyard {s:>9,.0f} jobs/s   bullmq {b:>9,.0f} jobs/s   ratio {s / b:4.1f}x")
for c in (1, 32, 128):
    s, b = fig[("switchyard", f"drain_c{c}")], fig[("bullmq", f"drain_c{c}")]
    ratio = float(s[0]) / float(b[0])
    print(f"drain c={c:<4}      switchyard {float(s[0]):>9,.0f} jobs/s   bullmq {float(b[0]):>9,.0f} jobs/s   ratio {ratio:4.1f}x  (target >= 5x)")
    print(f"                  switchyard {' '.join(s[1:])}")
    print(f"                  bullmq     {' '.join(b[1:])}")
for who in ("switchyard", "bullmq"):
    print(f"latency at {rate}/s  {who:<10} {' '.join(fig[(who, 'latency')])}  (target p99 <= 5 ms)")
for line in lines:
    if line.startswith("crash "):
        print("crash run:", line[6:])
PY
echo "(BullMQ $(node -p "require('./bench/jobs/node_modules/bullmq/package.json').version"), node $(node --version), $($RCLI INFO server | tr -d '\r' | awk -F: '/^redis_version/ {print "redis " $2}'))" | tee -a bench/results/jobs.txt
