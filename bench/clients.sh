#!/usr/bin/env bash
# Enqueue throughput through each client library against raw HTTP from the same language,
# same server, same run: N enqueues of a no-op job, 64 in flight, through
# @switchyard/client and through fetch (Node), and through switchyard-client's async
# client and through httpx (Python), ROUNDS rounds in turn. Reports each median and the
# client's overhead (target: at most 10%).
# Each round runs raw and client in turn, the order swapped every other round.
# Usage: bench/clients.sh   (N=20000 ROUNDS=3 LANGS="node python")
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
N="${N:-20000}"
ROUNDS="${ROUNDS:-3}"
LANGS="${LANGS:-node python}"

say "building the release binary and the TypeScript client"
cargo build --release --locked --bin app 2>&1 | tail -1
APP=target/release/app
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run build >/dev/null)
python3 -m pip install -q --disable-pip-version-check -e clients/python 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages -e clients/python
fresh_database switchyard_bench_clients
export REDIS_KEY_PREFIX="benchclients:" LOG_LEVEL=warn
export SWITCHYARD_TOKEN="bench-admin-token-0123456789abcdef"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SWITCHYARD_URL="http://127.0.0.1:$port"
work=$(mktemp -d)
ADMIN_TOKEN="$SWITCHYARD_TOKEN" APP_SECRET=bench-app-secret-0123456789abcdef PORT="$port" HOST=127.0.0.1 \
  "$APP" serve >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; redis-cli -p "$REDIS_PORT" --scan --pattern "benchclients:*" | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" DEL >/dev/null; rm -rf "$work"' EXIT
wait_live "$port"

rate() { python3 -c "import json,sys; print(json.load(sys.stdin)['jobs_per_s'])"; }
for r in $(seq 1 "$ROUNDS"); do
  say "round $r of $ROUNDS: $N enqueues, 64 in flight"
  modes="raw client"
  ((r % 2 == 0)) && modes="client raw"
  for lang in $LANGS; do
    for mode in $modes; do
      case $lang in
        node) jobs=$(node bench/clients/node.mjs "$mode" "$N" | rate) ;;
        python) jobs=$(python3 bench/clients/python.py "$mode" "$N" | rate) ;;
        *) echo "unknown language: $lang (node, python)" >&2; exit 2 ;;
      esac
      echo "$lang $mode $jobs" | tee -a "$work/results"
    done
  done
done

mkdir -p bench/results
python3 - "$work/results" "$N" <<'PY' | tee bench/results/clients.txt
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"Enqueue of {sys.argv[2]} no-op jobs, 64 in flight, through each client and through raw HTTP from the same language, same server, same run")
print("overhead: the median over rounds of 1 - client/raw, each round's two runs side by side (target <= 10%)")
for lang in dict.fromkeys(r[0] for r in rows):
    raw = [int(r[2]) for r in rows if r[0] == lang and r[1] == "raw"]
    client = [int(r[2]) for r in rows if r[0] == lang and r[1] == "client"]
    paired = [(1 - c / r) * 100 for r, c in zip(raw, client)]
    listed = lambda xs: ", ".join(f"{x:,}" for x in xs)
    print(f"{lang:<7} raw {statistics.median(raw):>7,.0f}/s ({listed(raw)})   client {statistics.median(client):>7,.0f}/s ({listed(client)})"
          f"   overhead {statistics.median(paired):+.1f}% (rounds {', '.join(f'{p:+.1f}%' for p in paired)})")
PY
