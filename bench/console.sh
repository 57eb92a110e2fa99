#!/usr/bin/env bash
# The console's weight and speed: a release `app dev`, headless Chromium (Debian's, via
# playwright-core from tests/browser), ROUNDS fresh browser contexts. Reports the bytes
# transferred for the first load of /console with an empty cache (compressed; the API
# viewer at /docs is not part of it), the time to the sign-in page, the time from a
# navigation to a fully drawn Overview once signed in, the binary's size and the
# console's share of it (its assets, gzipped, as embedded).
# Targets: first load <= 200 KB, Overview drawn <= 300 ms.
# Usage: bench/console.sh   (ROUNDS=7)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
ensure_browser
ROUNDS="${ROUNDS:-7}"

say "building the release binary"
cargo build --release --locked --bin app 2>&1 | tail -1
APP=target/release/app

fresh_database switchyard_bench_console
export REDIS_KEY_PREFIX="benchconsole:" LOG_LEVEL=warn
export ADMIN_TOKEN="bench-admin-token-0123456789"
port=18995
HOST=127.0.0.1 PORT=$port "$APP" dev >/dev/null 2>&1 & dev_pid=$!
trap 'kill $dev_pid 2>/dev/null || true' EXIT
wait_live "$port"

say "$ROUNDS rounds in headless Chromium"
out=$(node bench/console/load.mjs "http://127.0.0.1:$port" "$ADMIN_TOKEN" "$ROUNDS")
echo "$out"
binary=$(stat -c %s "$APP")
# The gzipped assets the binary embeds: the files the newest console_assets.rs includes.
table=$(ls -t target/release/build/switchyard-*/out/console_assets.rs | head -1)
embedded=$(grep -o 'include_bytes!("[^"]*")' "$table" | sed 's/include_bytes!("\(.*\)")/\1/' \
  | xargs stat -c %s | awk '{s+=$1} END {print s+0}')
mkdir -p bench/results
python3 - "$out" "$binary" "$embedded" <<'PY' | tee bench/results/console.txt
import json, statistics, sys
rounds = [json.loads(line) for line in sys.argv[1].splitlines()]
median = lambda key: statistics.median(r[key] for r in rounds)
print(f"Console first load, {len(rounds)} fresh browsers (median)")
print(f"  transferred for /console, empty cache  {median('first_load_bytes') / 1000:8.1f} KB  (target <= 200 KB)")
print(f"  sign-in page drawn                      {median('signin_ms'):8.0f} ms")
print(f"  Overview fully drawn, signed in         {median('overview_ms'):8.0f} ms  (target <= 300 ms)")
print(f"binary {int(sys.argv[2]) / 1e6:.1f} MB, of which console and /docs assets (gzipped) {int(sys.argv[3]) / 1e3:.0f} KB")
PY
