#!/usr/bin/env bash
# The job engine of this tree against the one at git revision REV, on one Redis, same run:
# each enqueues N no-op jobs in batches and one worker process of its own version drains
# them at concurrency C, ROUNDS rounds in turn. Reports each version's drain in jobs/s
# (first start to last finish, from the jobs' own timestamps), the ratio, and Redis
# commands per job. For a change to the queue's hot path: "no measurable cost" means the
# ratio stays within the rounds' spread.
# REV is built once with its own target directory (bench/target/compare), a few minutes.
# Usage: bench/compare.sh REV   (N=100000 C=32 ROUNDS=5)
set -euo pipefail
cd "$(dirname "$0")/.."
REV="${1:?usage: bench/compare.sh REV}"
source bench/common.sh
N="${N:-100000}"
C="${C:-32}"
ROUNDS="${ROUNDS:-5}"

say "building this tree's release binaries"
cargo build --release --locked --bin app --example jobs_driver 2>&1 | tail -1
NEW_APP=target/release/app
NEW_DRIVER=target/release/examples/jobs_driver
old_tree="bench/target/compare-src"
say "building $REV's release binaries in $old_tree"
# Kept between runs, so that the same revision builds only what changed.
if [ "$(cat "$old_tree/.revision" 2>/dev/null)" != "$(git rev-parse "$REV")" ]; then
  rm -rf "$old_tree"
  mkdir -p "$old_tree"
  git archive "$REV" | tar -x -C "$old_tree"
  git rev-parse "$REV" >"$old_tree/.revision"
fi
(cd "$old_tree" && cargo build --release --locked --bin app --example jobs_driver \
  --target-dir ../compare 2>&1 | tail -1)
OLD_APP=bench/target/compare/release/app
OLD_DRIVER=bench/target/compare/release/examples/jobs_driver

APP="$NEW_APP"
fresh_database switchyard_bench_compare
export REDIS_KEY_PREFIX="benchcompare:" LOG_LEVEL=warn WORKER_QUEUES=default
RCLI="redis-cli -p $REDIS_PORT"
work=$(mktemp -d)
worker_pid=""
trap '[ -n "$worker_pid" ] && kill -9 $worker_pid 2>/dev/null; rm -rf "$work"' EXIT
calls() { $RCLI INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s+0}'; }
reset() { $RCLI --scan --pattern "${REDIS_KEY_PREFIX}*" | xargs -r -n 1000 $RCLI DEL >/dev/null; }

# One round of version $1 with its app $2, driver $3 and config folder $4.
round() {
  local name=$1 app=$2 driver=$3 config=$4
  reset
  "$driver" enqueue "$N" batch "$work/ids" >/dev/null
  local before after
  before=$(calls)
  CONFIG_DIR="$config" WORKER_CONCURRENCY="$C" "$app" worker >>"$work/worker.log" 2>&1 &
  worker_pid=$!
  sleep 0.5
  kill -0 "$worker_pid" 2>/dev/null || { cat "$work/worker.log" >&2; exit 1; }
  "$driver" wait "$work/ids" 900 >/dev/null
  after=$(calls)
  kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=""
  local rate
  rate=$("$driver" drain "$work/ids" | python3 -c "import json,sys; print(round(json.load(sys.stdin)['jobs_per_s']))")
  echo "$name $rate $(python3 -c "print(f'{($after - $before) / $N:.2f}')")" | tee -a "$work/results"
}

for r in $(seq 1 "$ROUNDS"); do
  say "round $r of $ROUNDS: $N jobs, one worker at concurrency $C"
  round "$REV" "$OLD_APP" "$OLD_DRIVER" "$old_tree/config"
  round this "$NEW_APP" "$NEW_DRIVER" config
done
reset

mkdir -p bench/results
python3 - "$work/results" "$N" "$C" "$REV" <<'PY' | tee bench/results/compare.txt
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
n, c, rev = sys.argv[2], sys.argv[3], sys.argv[4]
print(f"Drain of {n} no-op jobs on one Redis, one worker process at concurrency {c}: this tree against {rev}, same run")
med = {}
for name in (rev, "this"):
    runs = [r for r in rows if r[0] == name]
    rates = [int(r[1]) for r in runs]
    med[name] = statistics.median(rates)
    print(f"{name:<10} median {med[name]:>7,.0f} jobs/s   rounds {', '.join(f'{x:,}' for x in rates)}   commands per job {runs[-1][2]}")
print(f"this / {rev}: {med['this'] / med[rev]:.3f}")
PY
