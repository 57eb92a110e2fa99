#!/usr/bin/env bash
# The job engine on a 3-master Redis Cluster against one Redis, same run: N no-op jobs
# spread over 3 queues (picked so that each master holds one), drained by one worker
# process at concurrency C, on the single Redis and then on the cluster, ROUNDS rounds in
# turn. Reports the drain in jobs/s on each (first start to last finish, from the jobs'
# own timestamps), their ratio, and the commands each server ran per job during the drain
# (INFO commandstats: every command, those run inside scripts included).
# The cluster is scripts/services.sh's (ports 7001-7003, started if absent).
# Usage: bench/cluster.sh   (N=100000 C=32 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
ensure_redis_cluster
N="${N:-100000}"
C="${C:-32}"
ROUNDS="${ROUNDS:-3}"

say "building release binaries (app and the benchmark driver)"
cargo build --release --locked --bin app --example jobs_driver 2>&1 | tail -1
APP=target/release/app
DRIVER=target/release/examples/jobs_driver
fresh_database switchyard_bench_cluster
export REDIS_KEY_PREFIX="benchcluster:"
export LOG_LEVEL=warn
SINGLE_PORT="$REDIS_PORT"
SEEDS="$SWITCHYARD_TEST_REDIS_CLUSTER"
CLUSTER_PORTS=$(echo "$SEEDS" | tr ',' '\n' | sed 's/.*://' | tr '\n' ' ')

# One queue per master: the first names whose hash tag's slot each master serves.
QUEUES=$(redis-cli -p "${CLUSTER_PORTS%% *}" cluster nodes | python3 -c '
import sys
def slot(tag):
    crc = 0
    for b in tag.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384
masters = []
for line in sys.stdin:
    f = line.split()
    if "master" in f[2]:
        ranges = [tuple(map(int, (r.split("-") * 2)[:2])) for r in f[8:] if not r.startswith("[")]
        masters.append(ranges)
names = []
for ranges in masters:
    n = 0
    while not any(a <= slot(f"q:bench{n}") <= b for a, b in ranges):
        n += 1
    names.append(f"bench{n}")
print(",".join(names))
')
say "queues $QUEUES, one per master"
export JOBS_QUEUES="$QUEUES" WORKER_QUEUES="$QUEUES" QUEUES
work=$(mktemp -d)
worker_pid=""
trap '[ -n "$worker_pid" ] && kill -9 $worker_pid 2>/dev/null; rm -rf "$work"' EXIT

calls() { redis-cli -p "$1" INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s+0}'; }
forget() {
  for port in "$@"; do
    redis-cli -p "$port" --scan --pattern "${REDIS_KEY_PREFIX}*" \
      | awk '{gsub(/"/, "\\\""); print "UNLINK \"" $0 "\""}' | redis-cli -p "$port" >/dev/null
  done
}
per_job() { python3 -c "print(f'{$1 / $N:.2f}')"; }

# One round on $1 (single|cluster): enqueue, drain with one worker, report.
round() {
  local target=$1 ports
  if [ "$target" = single ]; then
    ports="$SINGLE_PORT"
    export REDIS_URL="redis://127.0.0.1:$SINGLE_PORT"
    unset REDIS_CLUSTER_URLS
  else
    ports="$CLUSTER_PORTS"
    export REDIS_CLUSTER_URLS="$SEEDS"
  fi
  # shellcheck disable=SC2086 # one argument per port
  forget $ports
  "$DRIVER" enqueue "$N" batch "$work/ids" >/dev/null
  local before=() after=() port
  for port in $ports; do before+=("$(calls "$port")"); done
  WORKER_CONCURRENCY="$C" "$APP" worker >>"$work/worker.log" 2>&1 &
  worker_pid=$!
  "$DRIVER" wait "$work/ids" 900 >/dev/null
  for port in $ports; do after+=("$(calls "$port")"); done
  kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=""
  local drain shards="" i=0
  drain=$("$DRIVER" drain "$work/ids" | python3 -c "import json,sys; print(round(json.load(sys.stdin)['jobs_per_s']))")
  for port in $ports; do
    shards="$shards :$port=$(per_job $((after[i] - before[i])))"
    i=$((i + 1))
  done
  echo "$target $drain$shards" | tee -a "$work/results"
}

for r in $(seq 1 "$ROUNDS"); do
  say "round $r of $ROUNDS: $N jobs over 3 queues, one worker at concurrency $C"
  round single
  round cluster
done
# shellcheck disable=SC2086
forget "$SINGLE_PORT" $CLUSTER_PORTS

mkdir -p bench/results
python3 - "$work/results" "$N" "$C" <<'PY' | tee bench/results/cluster.txt
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
n, c = sys.argv[2], sys.argv[3]
print(f"Drain of {n} no-op jobs over 3 queues, one worker process at concurrency {c}: one Redis against a 3-master Redis Cluster, same run")
medians = {}
for target in ("single", "cluster"):
    runs = [r for r in rows if r[0] == target]
    rates = [int(r[1]) for r in runs]
    medians[target] = statistics.median(rates)
    print(f"{target:<8} median {medians[target]:>7,.0f} jobs/s   rounds {', '.join(f'{x:,}' for x in rates)}")
    print(f"         commands per job on each server, last round: {' '.join(runs[-1][2:])}")
print(f"cluster / single: {medians['cluster'] / medians['single']:.2f}")
PY
