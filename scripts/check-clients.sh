#!/usr/bin/env bash
# Checks that the client libraries match the server: the TypeScript client's types,
# generated from the OpenAPI document with openapi-typescript, must be what `app openapi`
# makes now (regenerate with `npm run generate` in clients/typescript after
# `app openapi > target/openapi.json`), and the client must compile under tsc --strict.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked --bin app -- openapi >target/openapi.json
cd clients/typescript
[ -d node_modules/openapi-typescript ] || npm ci --no-audit --no-fund --loglevel=error >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npx --no-install openapi-typescript ../../target/openapi.json --empty-objects-unknown \
  --output "$work/openapi.ts" >/dev/null 2>&1
if ! diff -u src/generated/openapi.ts "$work/openapi.ts" >"$work/drift"; then
  echo "clients/typescript/src/generated/openapi.ts differs from the server's OpenAPI document:" >&2
  head -40 "$work/drift" >&2
  echo "regenerate it: app openapi > target/openapi.json && (cd clients/typescript && npm run generate)" >&2
  exit 1
fi
npx --no-install tsc -p tsconfig.json --noEmit
echo "the TypeScript client's types match the server's OpenAPI document and it compiles"
