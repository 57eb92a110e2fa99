#!/usr/bin/env bash
# Type-checks .railway/railway.ts with `tsc --strict` against Railway's SDK (npm
# `railway@3`, pinned in .railway/package.json) and evaluates it with the SDK, checking it
# against the config-as-code files (.railway/check.mts). Needs Node.js and the npm
# registry; the packages stay in .railway/node_modules for the next run.
set -euo pipefail
cd "$(dirname "$0")/../.railway"
if [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/railway ]; then
  npm install --no-audit --no-fund --silent --no-package-lock >/dev/null
fi
node_modules/.bin/tsc -p tsconfig.json
node_modules/.bin/tsx check.mts
