#!/usr/bin/env bash
# Runs the example against `cargo run -- dev` (in another terminal): builds the client and
# the site, then serves on PORT (4321). Set SWITCHYARD_KEY (the admin token app dev
# printed, or a key), OUTBOUND_SIGNING_SECRET and APP_SECRET (the ones app dev printed).
set -euo pipefail
cd "$(dirname "$0")"
(cd ../../clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-4321}"
exec node dist/server/entry.mjs
