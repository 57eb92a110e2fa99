#!/usr/bin/env bash
# Runs the whole system on this machine: ensures PostgreSQL and Redis, then `app dev`
# (API, worker, scheduler and realtime in one process; it migrates first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
say "starting app dev on http://localhost:${PORT:-8080} (Ctrl-C to stop)"
exec cargo run --quiet -- dev "$@"
