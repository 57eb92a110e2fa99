#!/usr/bin/env bash
# File storage throughput and memory, against a plain copy on the same disk in the same run:
#   - upload (curl -T, streamed) and download (curl -o to disk, and to /dev/null) of a
#     SIZE_MIB file over loopback through `app serve` on the local backend, in MB/s,
#     beside `cp` of the same file (and `cp` + fsync, since the local backend makes each
#     object durable before its row is committed), ROUNDS rounds interleaved, medians
#     reported, with the best round beside them. Every step starts with nothing left to
#     write back (`sync`, untimed), and the stored object is read once before the timed
#     downloads, so that they read the page cache as `cp` does (uploads bypass it). The
#     CPU time curl itself spends on each transfer is reported too: the client shares the
#     machine, and its copies bound what loopback can reach;
#   - the server's peak RSS (VmHWM) over one upload and download of SIZE_MIB, beside a
#     fresh server doing the same with 10 MB;
#   - the server's peak RSS over CONCURRENT uploads of CONCURRENT_MIB at once, with the
#     default storage.upload_memory and with a budget too large to bind, and how long
#     they took and how many were stored.
# Usage: bench/files.sh   (SIZE_MIB=1024 ROUNDS=3 CONCURRENT=16 CONCURRENT_MIB=256);
# figures in bench/results/files.txt
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-3}"
CONCURRENT="${CONCURRENT:-16}"
CONCURRENT_MIB="${CONCURRENT_MIB:-256}"

say "building the release binary"
cargo build --release --locked --bin app 2>&1 | tail -1
APP="$PWD/target/release/app"
fresh_database switchyard_bench_files
export LOG_LEVEL=warn ADMIN_TOKEN="bench-admin-token-0123456789" REDIS_KEY_PREFIX="benchfiles:"
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

# "<wall seconds> <CPU seconds of the command's processes>" of a command, run after a
# sync so that no earlier write-back competes with it.
timed() {
  sync
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$@"
  awk '{ print $1, $2 + $3 }' "$work/time"
}
upload() {
  curl -fsS -X POST -H "$AUTH" -H 'Content-Type: application/octet-stream' -T "$1" \
    "$URL/api/v1/files?bucket=bench&name=$(basename "$1")" -o "$work/uploaded.json"
}
download() {
  local id
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/uploaded.json")
  curl -fsS -H "$AUTH" "$URL/api/v1/files/$id/content" -o "${1:-$work/downloaded.bin}"
}
copy_plain() { cp "$work/source.bin" "$work/copies/copy.bin"; }
copy_synced() { cp "$work/source.bin" "$work/copies/copy.bin"; sync "$work/copies/copy.bin"; }
export -f upload download copy_plain copy_synced
export work AUTH URL

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

say "throughput: $ROUNDS rounds of cp, cp + fsync, upload, download to disk and to /dev/null"
: >"$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$work/copies/copy.bin"; plain=$(timed bash -c copy_plain)
  rm -f "$work/copies/copy.bin"; synced=$(timed bash -c copy_synced)
  rm -f "$work/copies/copy.bin"
  up=$(timed bash -c "upload $work/source.bin")
  cat "$work"/storage/files/bench/* >/dev/null
  down=$(timed bash -c download)
  rm -f "$work/downloaded.bin"
  null=$(timed bash -c "download /dev/null")
  echo "$plain $synced $up $down $null" >>"$work/rounds"
  say "round $round (wall s, CPU s): cp $plain, cp+fsync $synced, upload $up, download $down, to /dev/null $null"
done
stop_server

say "memory: peak RSS over $CONCURRENT uploads of $CONCURRENT_MIB MiB at once, with the default budget and unbounded"
head -c "$((CONCURRENT_MIB << 20))" /dev/urandom >"$work/concurrent.bin"
# Appends "<peak KiB> <wall s> <uploads stored>" to $2 for CONCURRENT uploads at once
# under the budget $1.
concurrent() {
  STORAGE_UPLOAD_MEMORY="$1" start_server
  local began pids=()
  began=$(date +%s.%N)
  : >"$work/codes"
  for i in $(seq 1 "$CONCURRENT"); do
    curl -sS -o /dev/null -w '%{http_code}\n' -X POST -H "$AUTH" \
      -H 'Content-Type: application/octet-stream' -T "$work/concurrent.bin" \
      "$URL/api/v1/files?bucket=bench&name=c$i.bin" >>"$work/codes" &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo "$(peak_kib) $(echo "$(date +%s.%N) - $began" | bc) $(grep -c '^201$' "$work/codes" || true)" >"$2"
  stop_server
}
concurrent 96MiB "$work/budgeted"
concurrent 64GiB "$work/unbounded"
budgeted=$(cat "$work/budgeted")
unbounded=$(cat "$work/unbounded")
rm -f "$work/concurrent.bin"


python3 - "$mb" "$SIZE_MIB" "$small_peak" "$large_peak" "$work/rounds" "$budgeted" "$unbounded" "$CONCURRENT" "$CONCURRENT_MIB" <<'PY' | tee bench/results/files.txt
import statistics, sys
mb, size, small_peak, large_peak = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
budgeted, unbounded = sys.argv[6].split(), sys.argv[7].split()
n, each = sys.argv[8], sys.argv[9]
rounds = [[float(x) for x in line.split()] for line in open(sys.argv[5])]
wall = lambda i: statistics.median(r[2 * i] for r in rounds)
best = lambda i: min(r[2 * i] for r in rounds)
cpu = lambda i: statistics.median(r[2 * i + 1] for r in rounds)
cp, cps, up, down, null = (mb / wall(i) for i in range(5))
bcp, bcps, bup, bdown, bnull = (mb / best(i) for i in range(5))
print(f"file storage, local backend, {size} MiB over loopback, {len(rounds)} rounds: median (best)")
print(f"  cp                     {cp:6.0f} ({bcp:.0f}) MB/s")
print(f"  cp + fsync             {cps:6.0f} ({bcps:.0f}) MB/s")
print(f"  upload                 {up:6.0f} ({bup:.0f}) MB/s   {up / cps:.0%} ({bup / bcps:.0%}) of cp + fsync,"
      f" {up / cp:.0%} ({bup / bcp:.0%}) of cp; curl's own CPU {cpu(2):.2f} s")
print(f"  download to disk       {down:6.0f} ({bdown:.0f}) MB/s   {down / cp:.0%} ({bdown / bcp:.0%}) of cp;"
      f" curl's own CPU {cpu(3):.2f} s, cp's {cpu(0):.2f} s")
print(f"  download to /dev/null  {null:6.0f} ({bnull:.0f}) MB/s   {null / cp:.0%} ({bnull / bcp:.0%}) of cp")
print(f"  peak RSS, 10 MB        {small_peak / 1024:6.1f} MiB")
print(f"  peak RSS, {size} MiB    {large_peak / 1024:6.1f} MiB   ({large_peak / small_peak:.2f}x the 10 MB run)")
for label, (peak, wall, stored) in (("96 MiB budget", budgeted), ("unbounded", unbounded)):
    print(f"  {n} x {each} MiB at once, {label:<13} peak RSS {int(peak) / 1024:6.1f} MiB ({int(peak) * 1024 / 1e6:.0f} MB),"
          f" {float(wall):5.1f} s, {stored}/{n} stored")
PY
