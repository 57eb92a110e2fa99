#!/usr/bin/env bash
# Checks that the API's OpenAPI document makes a client that compiles: `app openapi`
# prints it, openapi-typescript turns it into types, and tsc --strict compiles them.
# The tools are pinned in tests/browser/package.json (npm ci there installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/browser/node_modules/openapi-typescript ] \
  || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --quiet --locked --bin app -- openapi >"$work/openapi.json"
bin=tests/browser/node_modules/.bin
"$bin/openapi-typescript" "$work/openapi.json" --output "$work/api.d.ts" >/dev/null
"$bin/tsc" --strict --noEmit --skipLibCheck false "$work/api.d.ts"
echo "the OpenAPI document ($(grep -c '"/api/' "$work/openapi.json") path lines) makes types that compile"
