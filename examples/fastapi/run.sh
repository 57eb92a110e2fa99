#!/usr/bin/env bash
# Runs the example against `cargo run -- dev` (in another terminal): installs the client
# and FastAPI, then serves on PORT (8000). Set SWITCHYARD_KEY (the admin token app dev
# printed, or a key), OUTBOUND_SIGNING_SECRET and APP_SECRET (the ones app dev printed).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -q --disable-pip-version-check -e ../../clients/python fastapi uvicorn 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages -e ../../clients/python fastapi uvicorn
exec python3 -m uvicorn app:app --host 127.0.0.1 --port "${PORT:-8000}"
