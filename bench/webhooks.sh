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
# The receiver checks every signature with its own HMAC code, not Switchyard's.
# Usage: bench/webhooks.sh   (EVENTS=10000 ENDPOINTS=10 RATE=500 STEADY_SECONDS=20
#                             CONCURRENCY=256 CLIENTS=64)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
export EVENTS="${EVENTS:-10000}" ENDPOINTS="${ENDPOINTS:-10}" RATE="${RATE:-500}"
export STEADY_SECONDS="${STEADY_SECONDS:-20}" CLIENTS="${CLIENTS:-64}"
CONCURRENCY="${CONCURRENCY:-256}"

say "building release binaries (app and the benchmark driver)"
cargo build --release --locked --bin app --example webhooks_driver 2>&1 | tail -1
APP=target/release/app
DRIVER=target/release/examples/webhooks_driver

fresh_database switchyard_bench_webhooks
export REDIS_KEY_PREFIX="benchhooks:"
export LOG_LEVEL=warn
export ADMIN_TOKEN="bench-admin-token-0123456789"
export ENCRYPTION_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
export OUTBOUND_ALLOW_PRIVATE=true
$(command -v redis-cli) -p "$REDIS_PORT" --scan --pattern "benchhooks:*" | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL >/dev/null
work=$(mktemp -d)
port=18941
HOST=127.0.0.1 PORT=$port "$APP" serve >"$work/serve.log" 2>&1 & serve_pid=$!
WORKER_QUEUES=webhooks WORKER_CONCURRENCY=$CONCURRENCY OUTBOUND_MAX_CONCURRENT=$CONCURRENCY \
  "$APP" worker >"$work/worker.log" 2>&1 & worker_pid=$!
trap 'kill $serve_pid $worker_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/api/health" && break; sleep 0.1; done

say "floor, fan-out ($EVENTS events x $ENDPOINTS endpoints) and steady ($RATE events/s for ${STEADY_SECONDS}s)"
out=$("$DRIVER" "http://127.0.0.1:$port" "$ADMIN_TOKEN")
echo "$out"
results=bench/results/webhooks.txt
python3 - "$out" >"$results" <<'PY'
import json, sys
phases = {p["phase"]: p for p in map(json.loads, sys.argv[1].splitlines())}
floor, ureq, fan, steady = phases["floor"], phases["floor-ureq"], phases["fanout"], phases["steady"]
print(f"Switchyard webhooks: {fan['events']} events x {fan['endpoints']} endpoints, receiver verifying every signature")
ratio = fan["deliveries_per_s"] / floor["deliveries_per_s"]
print(f"fan-out     switchyard {fan['deliveries_per_s']:>9,.0f} deliveries/s   bare async client {floor['deliveries_per_s']:>9,.0f} deliveries/s   ratio {ratio:.2f}  (target >= 10,000/s)")
print(f"            bare blocking client (ureq, {floor['clients']} threads) {ureq['deliveries_per_s']:,.0f} deliveries/s")
print(f"            relay (commit to job enqueued) p50_ms={fan['relay']['p50_ms']} p99_ms={fan['relay']['p99_ms']}  (a backlog of {fan['events']} events sent in {fan['events_sent_in_s']} s)")
print(f"            lost={fan['check']['lost']} duplicated={fan['check']['duplicated']} unverified={fan['check']['unverified']}")
c = steady["commit_to_receipt"]
print(f"steady {steady['events_per_s']}/s ({steady['deliveries']} deliveries)  commit_to_receipt p50_ms={c['p50_ms']} p99_ms={c['p99_ms']} max_ms={c['max_ms']}")
print(f"            relay p50_ms={steady['relay']['p50_ms']} p99_ms={steady['relay']['p99_ms']}  (target p99 <= 100 ms)")
print(f"            lost={steady['check']['lost']} duplicated={steady['check']['duplicated']} unverified={steady['check']['unverified']}")
PY
cat "$results"
