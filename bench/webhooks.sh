#!/usr/bin/env bash
# Events and webhooks, against a bare client's floor in the same run:
#   - floor: a bare Rust client signs and POSTs EVENTS x ENDPOINTS deliveries straight to
#     a local receiver, CLIENTS at a time, once blocking (ureq on threads) and once async
#     (hyper), the two designs an outbound client can have,
#   - fan-out: EVENTS application events (batches of 1000), each to ENDPOINTS endpoints on
#     that receiver, through `app serve` (API and relay) and `app worker` (the webhooks
#     queue and a second relay): deliveries/s, relay latency (commit to job enqueued)
#     p50/p99, and lost, duplicated or unverified deliveries,
#   - steady: RATE events/s for STEADY_SECONDS, one POST each: commit-to-receipt p50/p99.
# The receiver checks every signature with its own HMAC code, not Switchyard's. Each of
# ROUNDS rounds starts from a fresh database and fresh processes; every round is printed,
# and the medians are the figures (the machine is shared: one round can land on a busy
# moment, and its floor shows it).
# Usage: bench/webhooks.sh   (ROUNDS=3 EVENTS=10000 ENDPOINTS=10 RATE=500 STEADY_SECONDS=20
#                             CONCURRENCY=256 CLIENTS=64)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
export EVENTS="${EVENTS:-10000}" ENDPOINTS="${ENDPOINTS:-10}" RATE="${RATE:-500}"
export STEADY_SECONDS="${STEADY_SECONDS:-20}" CLIENTS="${CLIENTS:-64}"
CONCURRENCY="${CONCURRENCY:-256}" ROUNDS="${ROUNDS:-3}"

say "building release binaries (app and the benchmark driver)"
cargo build --release --locked --bin app --example webhooks_driver 2>&1 | tail -1
APP=target/release/app
DRIVER=target/release/examples/webhooks_driver

export REDIS_KEY_PREFIX="benchhooks:"
export LOG_LEVEL=warn
export ADMIN_TOKEN="bench-admin-token-0123456789"
export ENCRYPTION_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
export OUTBOUND_ALLOW_PRIVATE=true
work=$(mktemp -d)
port=18941
serve_pid="" worker_pid=""
trap 'kill $serve_pid $worker_pid 2>/dev/null || true; rm -rf "$work"' EXIT

# One round: a fresh database and Redis prefix, `app serve` and `app worker`, the driver.
round() {
  fresh_database switchyard_bench_webhooks >&2
  $(command -v redis-cli) -p "$REDIS_PORT" --scan --pattern "benchhooks:*" | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL >/dev/null
  HOST=127.0.0.1 PORT=$port "$APP" serve >"$work/serve.log" 2>&1 & serve_pid=$!
  WORKER_QUEUES=webhooks WORKER_CONCURRENCY=$CONCURRENCY OUTBOUND_MAX_CONCURRENT=$CONCURRENCY \
    "$APP" worker >"$work/worker.log" 2>&1 & worker_pid=$!
  wait_live "$port"
  "$DRIVER" "http://127.0.0.1:$port" "$ADMIN_TOKEN" | sed "s/^{/{\"round\":$1,/"
  kill $serve_pid $worker_pid; wait $serve_pid $worker_pid 2>/dev/null || true
}

say "$ROUNDS rounds of floor, fan-out ($EVENTS events x $ENDPOINTS endpoints) and steady ($RATE events/s for ${STEADY_SECONDS}s)"
for r in $(seq "$ROUNDS"); do
  round "$r" >>"$work/rounds.jsonl"
done
out=$(cat "$work/rounds.jsonl")
echo "$out"
results=bench/results/webhooks.txt
python3 - "$out" >"$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in sys.argv[1].splitlines() if line.strip()]
rounds = sorted({r["round"] for r in rows})
phase = lambda r, name: next(p for p in rows if p["round"] == r and p["phase"] == name)
med = lambda values: round(statistics.median(values), 1)
first = phase(rounds[0], "fanout")
print(f"Switchyard webhooks: {first['events']} events x {first['endpoints']} endpoints, receiver verifying every signature, {len(rounds)} rounds")
lost = dup = unverified = 0
for r in rounds:
    floor, ureq, fan, steady = (phase(r, n) for n in ("floor", "floor-ureq", "fanout", "steady"))
    c = steady["commit_to_receipt"]
    for p in (fan, steady):
        lost += p["check"]["lost"]; dup += p["check"]["duplicated"]; unverified += p["check"]["unverified"]
    print(f"round {r}: fan-out {fan['deliveries_per_s']:>7,.0f}/s (bare async client {floor['deliveries_per_s']:>7,.0f}/s, ratio {fan['deliveries_per_s'] / floor['deliveries_per_s']:.2f}; "
          f"blocking {ureq['deliveries_per_s']:,.0f}/s)  backlog relay p50 {fan['relay']['p50_ms']} ms p99 {fan['relay']['p99_ms']} ms  |  "
          f"steady {steady['events_per_s']}/s: relay p50 {steady['relay']['p50_ms']} ms p99 {steady['relay']['p99_ms']} ms, commit to receipt p50 {c['p50_ms']} ms p99 {c['p99_ms']} ms")
fan = [phase(r, "fanout")["deliveries_per_s"] for r in rounds]
ratio = [phase(r, "fanout")["deliveries_per_s"] / phase(r, "floor")["deliveries_per_s"] for r in rounds]
relay99 = [phase(r, "steady")["relay"]["p99_ms"] for r in rounds]
relay50 = [phase(r, "steady")["relay"]["p50_ms"] for r in rounds]
receipt99 = [phase(r, "steady")["commit_to_receipt"]["p99_ms"] for r in rounds]
print(f"median: fan-out {med(fan):,.0f} deliveries/s (target >= 10,000), ratio to the bare async client {med(ratio):.2f}")
print(f"        steady relay (commit to job enqueued) p50 {med(relay50)} ms, p99 {med(relay99)} ms (target <= 100 ms); commit to receipt p99 {med(receipt99)} ms")
print(f"        lost={lost} duplicated={dup} unverified={unverified} over every round")
PY
cat "$results"
