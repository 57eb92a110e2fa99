#!/usr/bin/env bash
# Checks that the API's OpenAPI document makes a client that compiles: `app openapi`
# prints it, openapi-typescript turns it into types, and tsc --strict compiles them.
# The tools are pinned in tests/browser/package.json (npm ci there installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/browser/node_modules/openapi-typescript ] \
  || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
# utoipa names each schema after its Rust type and keeps one per name, so two types of
# one name would silently share a schema: the document would describe one of them wrong.
python3 - <<'PY'
import re, sys
from pathlib import Path
names = {}
for path in Path("src").rglob("*.rs"):
    text = path.read_text()
    for match in re.finditer(r"#\[derive\([^)]*\bToSchema\b[^)]*\)\]((?:\s*#\[[^\]]*\])*)\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum)\s+(\w+)", text):
        attributes, name = match.group(1), match.group(2)
        renamed = re.search(r"schema\(\s*as\s*=\s*([\w:]+)", attributes)
        names.setdefault(renamed.group(1) if renamed else name, []).append(str(path))
clashes = {name: paths for name, paths in names.items() if len(paths) > 1}
for name, paths in clashes.items():
    print(f"two OpenAPI schemas named {name}: {', '.join(paths)}", file=sys.stderr)
sys.exit(1 if clashes else 0)
PY
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --quiet --locked --bin app -- openapi >"$work/openapi.json"
bin=tests/browser/node_modules/.bin
"$bin/openapi-typescript" "$work/openapi.json" --output "$work/api.d.ts" >/dev/null
"$bin/tsc" --strict --noEmit --skipLibCheck false "$work/api.d.ts"
echo "the OpenAPI document ($(grep -c '"/api/' "$work/openapi.json") path lines) makes types that compile"
