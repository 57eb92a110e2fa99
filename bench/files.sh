#!/usr/bin/env bash
# File storage throughput and memory, against a plain copy on the same disk in the same run:
#   - upload (curl -T, streamed) and download (curl -o to disk) of a SIZE_MIB file over
#     loopback through `app serve` on the local backend, in MB/s, beside `cp` of the same
#     file (and `cp` + fsync, since the local backend fsyncs each object before its row is
#     committed), ROUNDS rounds interleaved, medians reported;
#   - the server's peak RSS (VmHWM) over one upload and download of SIZE_MIB, beside a
#     fresh server doing the same with 10 MB.
# Usage: bench/files.sh   (SIZE_MIB=1024 ROUNDS=3); figures in bench/results/files.txt
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-3}"

say "building the release binary"
cargo build --release --locked --bin app 2>&1 | tail -1
APP="$PWD/target/release/app"
BENCH_DB="switchyard_bench_files"
as_postgres psql -p "$PG_PORT" -qtAc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
as_postgres createdb -p "$PG_PORT" -O "$DB_ROLE" "$BENCH_DB"
export DATABASE_URL="${DATABASE_URL%/*}/$BENCH_DB"
export LOG_LEVEL=warn ADMIN_TOKEN="bench-admin-token-0123456789" REDIS_KEY_PREFIX="benchfiles:"
"$APP" migrate
# On the same disk as the repository, where the copy baseline runs too.
work="$PWD/bench/target/files"
rm -rf "$work"
mkdir -p "$work/config" "$work/copies"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/config/default.toml" <<EOF
[storage.buckets.bench]
max_file_size = "4GiB"
EOF
PORT=18090
URL="http://127.0.0.1:$PORT"
AUTH="Authorization: Bearer $ADMIN_TOKEN"

start_server() {
  rm -rf "$work/storage"
  CONFIG_DIR="$work/config" STORAGE_PATH="$work/storage" PORT=$PORT "$APP" serve >"$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$URL/api/health/live" 2>/dev/null && return
    sleep 0.1
  done
  echo "app serve did not start" >&2; cat "$work/serve.log" >&2; exit 1
}
stop_server() { kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=""; }
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$server/status"; }

# Seconds taken by a command.
timed() {
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }' 
}
upload() {
  curl -fsS -X POST -H "$AUTH" -H 'Content-Type: application/octet-stream' -T "$1" \
    "$URL/api/v1/files?bucket=bench&name=$(basename "$1")" -o "$work/uploaded.json"
}
download() {
  local id
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/uploaded.json")
  curl -fsS -H "$AUTH" "$URL/api/v1/files/$id/content" -o "$work/downloaded.bin"
}
copy_plain() { cp "$work/source.bin" "$work/copies/copy.bin"; }
copy_synced() { cp "$work/source.bin" "$work/copies/copy.bin"; sync "$work/copies/copy.bin"; }

say "making a $SIZE_MIB MiB file of random bytes"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/source.bin"
head -c 10000000 /dev/urandom >"$work/small.bin"
expected=$(sha256sum "$work/source.bin" | cut -d' ' -f1)
mb=$(awk -v s="$SIZE_MIB" 'BEGIN { print s * 1048576 / 1000000 }')

say "memory: peak RSS over one upload and download of 10 MB, then of $SIZE_MIB MiB"
start_server
upload "$work/small.bin"; download
small_peak=$(peak_kib)
stop_server
start_server
upload "$work/source.bin"; download
large_peak=$(peak_kib)
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$work/uploaded.json")
[ "$got" = "$expected" ] || { echo "the stored SHA-256 differs from the file's" >&2; exit 1; }
[ "$(sha256sum "$work/downloaded.bin" | cut -d' ' -f1)" = "$expected" ] || { echo "the download differs from the file" >&2; exit 1; }

say "throughput: $ROUNDS rounds of upload, download, cp and cp + fsync"
up=(); down=(); plain=(); synced=()
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$work/copies/copy.bin"; plain+=("$(timed copy_plain)")
  rm -f "$work/copies/copy.bin"; synced+=("$(timed copy_synced)")
  rm -f "$work/copies/copy.bin"
  up+=("$(timed upload "$work/source.bin")")
  rm -f "$work/downloaded.bin"
  down+=("$(timed download)")
  rm -f "$work/downloaded.bin"
  say "round $round: cp ${plain[-1]}s, cp+fsync ${synced[-1]}s, upload ${up[-1]}s, download ${down[-1]}s"
done
stop_server

python3 - "$mb" "$SIZE_MIB" "$small_peak" "$large_peak" "${plain[*]}" "${synced[*]}" "${up[*]}" "${down[*]}" <<'PY' | tee bench/results/files.txt
import statistics, sys
mb, size, small_peak, large_peak = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rate = lambda xs: mb / statistics.median(float(x) for x in xs.split())
cp, cps, up, down = (rate(x) for x in sys.argv[5:9])
print(f"file storage, local backend, {size} MiB over loopback (medians)")
print(f"  cp                 {cp:8.0f} MB/s")
print(f"  cp + fsync         {cps:8.0f} MB/s")
print(f"  upload             {up:8.0f} MB/s   {up / cp:5.0%} of cp, {up / cps:5.0%} of cp + fsync")
print(f"  download           {down:8.0f} MB/s   {down / cp:5.0%} of cp")
print(f"  peak RSS, 10 MB    {small_peak / 1024:8.1f} MiB")
print(f"  peak RSS, {size} MiB {large_peak / 1024:6.1f} MiB   ({large_peak / small_peak:.2f}x the 10 MB run)")
PY
