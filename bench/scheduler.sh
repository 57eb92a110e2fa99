#!/usr/bin/env bash
# The scheduler's benchmarks, each against a baseline in the same run:
#   - tick precision: enqueue time minus the tick boundary over TICKS ticks (10 schedules
#     firing every second), p50, p99 and max;
#   - idle RSS and CPU over IDLE_SECONDS of a scheduler with 100 schedules, beside one
#     with none.
# Usage: bench/scheduler.sh   (TICKS=200 IDLE_SECONDS=60)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
TICKS="${TICKS:-200}"
IDLE_SECONDS="${IDLE_SECONDS:-60}"

say "building the release binary"
cargo build --release --locked --bin app 2>&1 | tail -1
APP="$PWD/target/release/app"
fresh_database switchyard_bench_scheduler
export LOG_LEVEL=warn
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
RCLI="redis-cli -p $REDIS_PORT"

say "tick precision: 10 schedules every second until $TICKS ticks"
mkdir -p "$work/precision"
for i in $(seq 0 9); do
  printf '[[schedule]]\nname = "s%s"\ncron = "* * * * * *"\nqueue = "default"\nkind = "noop"\n\n' "$i"
done >"$work/precision/schedule.toml"
export REDIS_KEY_PREFIX="benchsched:"
$RCLI --scan --pattern "benchsched:*" | xargs -r $RCLI DEL >/dev/null
CONFIG_DIR="$work/precision" SCHEDULER_BUILTIN=false "$APP" scheduler >/dev/null 2>&1 &
pids+=($!)
sleep "$(( TICKS / 10 + 2 ))"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
precision=$(python3 - "$TICKS" <<'PY'
import subprocess, sys
def r(*args):
    return subprocess.run(["redis-cli", *args], capture_output=True, text=True).stdout.split()
late = []
for key in r("--scan", "--pattern", "benchsched:{q:default}:idem:schedule:*"):
    tick = int(key.rsplit(":", 1)[1])
    job = r("GET", key)[0]
    created = int(r("HGET", f"benchsched:{{q:default}}:job:{job}", "created_ms")[0])
    late.append(created - tick)
late.sort()
late = late[: int(sys.argv[1])]
at = lambda q: late[min(len(late) - 1, int(len(late) * q))]
print(f"{len(late)} ticks: p50 {at(0.5)} ms, p99 {at(0.99)} ms, max {late[-1]} ms")
PY
)

say "idle RSS and CPU over ${IDLE_SECONDS}s: 100 schedules beside none"
mkdir -p "$work/hundred" "$work/none"
python3 - "$work/hundred/schedule.toml" <<'PY'
import sys
zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
crons = ["* * * * *", "*/5 * * * *", "0 * * * *", "30 2 * * *", "0 9 * * 1-5"]
with open(sys.argv[1], "w") as f:
    for i in range(100):
        f.write(f'[[schedule]]\nname = "s{i}"\ncron = "{crons[i % 5]}"\ntimezone = "{zones[i // 20]}"\n'
                f'queue = "default"\nkind = "noop"\n\n')
PY
: >"$work/none/schedule.toml"
export REDIS_KEY_PREFIX="benchsched2:"
CONFIG_DIR="$work/hundred" "$APP" scheduler >/dev/null 2>&1 & hundred=$!; pids+=($hundred)
REDIS_KEY_PREFIX="benchsched3:" CONFIG_DIR="$work/none" SCHEDULER_BUILTIN=false "$APP" scheduler >/dev/null 2>&1 & none=$!; pids+=($none)
sleep 3
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
h0=$(cpu $hundred); n0=$(cpu $none)
sleep "$IDLE_SECONDS"
h1=$(cpu $hundred); n1=$(cpu $none)
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hundred_rss=$(rss $hundred); none_rss=$(rss $none)
kill -TERM $hundred $none; wait $hundred $none 2>/dev/null || true
for p in benchsched benchsched2 benchsched3; do $RCLI --scan --pattern "$p:*" | xargs -r $RCLI DEL >/dev/null; done

mkdir -p bench/results
{
  echo "Switchyard scheduler"
  echo "tick precision (enqueue time minus tick boundary), $precision  (target <= 100 ms)"
  python3 -c "
h, n, s = $((h1 - h0)), $((n1 - n0)), $IDLE_SECONDS
print(f'idle, 100 schedules: RSS {$hundred_rss / 1024:.1f} MiB, CPU {h / s:.2f} % of a core over {s} s')
print(f'idle, no schedules:  RSS {$none_rss / 1024:.1f} MiB, CPU {n / s:.2f} % of a core (baseline)')
"
} | tee bench/results/scheduler.txt
