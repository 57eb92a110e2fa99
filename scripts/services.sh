# Sourced by dev.sh and test.sh: makes sure PostgreSQL (15 or newer) and Redis (7) are
# running on this machine and exports DATABASE_URL and REDIS_URL (test.sh also starts an
# S3 server for the storage tests). URLs already set in the
# environment are used as they are. Works as root (CI) and as a user with sudo; installs
# a missing server with apt-get on Debian and Ubuntu. No Docker needed.

set -euo pipefail

PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
DB_ROLE=switchyard
DB_PASSWORD=switchyard

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

apt_install() {
  command -v apt-get >/dev/null || { echo "cannot install $*: no apt-get; install it yourself or set the URL" >&2; exit 1; }
  say "installing $* with apt-get"
  $SUDO apt-get update -qq >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "PostgreSQL: using DATABASE_URL from the environment"
    return
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
    if ! command -v pg_lsclusters >/dev/null; then
      apt_install postgresql postgresql-client
    fi
    local cluster
    cluster=$(pg_lsclusters --no-header 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1" "$2; exit}')
    if [ -z "$cluster" ]; then
      local version
      version=$(ls /usr/lib/postgresql | sort -n | tail -1)
      say "creating a PostgreSQL $version cluster on port $PG_PORT"
      $SUDO pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
      cluster="$version main"
    fi
    say "starting PostgreSQL cluster $cluster"
    # shellcheck disable=SC2086
    $SUDO pg_ctlcluster $cluster start
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.2; done
  fi
  # Roles and databases are made as the server's superuser over its Unix socket; a server
  # reached only over TCP (another container, another socket directory) is not ours to
  # manage.
  if ! as_postgres pg_isready -q -p "$PG_PORT" 2>/dev/null; then
    echo "PostgreSQL answers on 127.0.0.1:$PG_PORT but not on its local Unix socket, so this" >&2
    echo "script cannot create its role and database there. Set DATABASE_URL to a database" >&2
    echo "whose role may CREATEDB and CREATEROLE (the tests make databases and roles), e.g." >&2
    echo "  DATABASE_URL=postgres://user:password@host:$PG_PORT/switchyard scripts/test.sh" >&2
    exit 1
  fi
  local major
  major=$(as_postgres psql -p "$PG_PORT" -tAc "SHOW server_version_num" | cut -c1-2)
  if [ "$major" -lt 15 ]; then
    echo "PostgreSQL on port $PG_PORT is version $major; Switchyard needs 15 or newer" >&2
    exit 1
  fi
  # A dedicated role that may create databases (tests make one each) and roles (a test
  # rotates a login's password under a running server), so the server's superuser keeps
  # whatever authentication it had.
  as_postgres psql -p "$PG_PORT" -qtAc "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_ROLE') THEN
        CREATE ROLE $DB_ROLE LOGIN CREATEDB CREATEROLE PASSWORD '$DB_PASSWORD';
      END IF;
      ALTER ROLE $DB_ROLE CREATEDB CREATEROLE;
    END \$\$;" >/dev/null
  if ! as_postgres psql -p "$PG_PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = 'switchyard'" | grep -q 1; then
    as_postgres createdb -p "$PG_PORT" -O "$DB_ROLE" switchyard
  fi
  export DATABASE_URL="postgres://$DB_ROLE:$DB_PASSWORD@127.0.0.1:$PG_PORT/switchyard"
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    say "Redis: using REDIS_URL from the environment"
    return
  fi
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
  fi
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    say "starting Redis on port $REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 ::1 --save '' --appendonly no \
      --daemonize yes --logfile "${TMPDIR:-/tmp}/switchyard-redis.log" >/dev/null
    for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
}

# A 3-master Redis Cluster from the same redis-server, on REDIS_CLUSTER_PORTS (7001-7003
# unless set), for the suites' cluster pass: started unless SWITCHYARD_TEST_REDIS_CLUSTER
# already names one. Exports SWITCHYARD_TEST_REDIS_CLUSTER, the seeds.
ensure_redis_cluster() {
  if [ -n "${SWITCHYARD_TEST_REDIS_CLUSTER:-}" ]; then
    say "Redis Cluster: using SWITCHYARD_TEST_REDIS_CLUSTER from the environment"
    return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  local ports="${REDIS_CLUSTER_PORTS:-7001 7002 7003}" dir="${TMPDIR:-/tmp}/switchyard-redis-cluster"
  local first="${ports%% *}" seeds="" port
  for port in $ports; do seeds="$seeds${seeds:+,}redis://127.0.0.1:$port"; done
  export SWITCHYARD_TEST_REDIS_CLUSTER="$seeds"
  if redis-cli -p "$first" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
    return
  fi
  say "starting a 3-master Redis Cluster on ports $ports"
  mkdir -p "$dir"
  for port in $ports; do
    if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
      rm -f "$dir/nodes-$port.conf"
      redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 5000 \
        --dir "$dir" --save '' --appendonly no --daemonize yes \
        --logfile "$dir/redis-$port.log" >/dev/null
    fi
  done
  for port in $ports; do
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  local nodes=""
  for port in $ports; do nodes="$nodes 127.0.0.1:$port"; done
  # shellcheck disable=SC2086 # one argument per node
  redis-cli --cluster create $nodes --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$first" cluster info | grep -q 'cluster_state:ok' && return
    sleep 0.1
  done
  echo "the Redis Cluster did not become ready; see $dir" >&2
  exit 1
}

# The file tests' S3 path runs against moto's S3 server (PyPI moto[server]), started here
# on S3_TEST_PORT unless SWITCHYARD_TEST_S3_ENDPOINT points elsewhere. Only test.sh calls it.
ensure_s3() {
  if [ -n "${SWITCHYARD_TEST_S3_ENDPOINT:-}" ]; then
    say "S3: using SWITCHYARD_TEST_S3_ENDPOINT from the environment"
    return
  fi
  local port="${S3_TEST_PORT:-9090}"
  export SWITCHYARD_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  if curl -fsS -o /dev/null "$SWITCHYARD_TEST_S3_ENDPOINT/" 2>/dev/null; then
    return
  fi
  if ! python3 -c 'import moto.server, flask_cors' >/dev/null 2>&1; then
    command -v python3 >/dev/null || apt_install python3 python3-pip
    say "installing moto[server] with pip"
    python3 -m pip install -q --disable-pip-version-check 'moto[server]' >/dev/null 2>&1 \
      || python3 -m pip install -q --break-system-packages 'moto[server]' >/dev/null
  fi
  say "starting moto's S3 server on port $port"
  nohup python3 -m moto.server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/switchyard-moto.log" 2>&1 &
  # test.sh stops what it started when it exits.
  S3_STARTED_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$SWITCHYARD_TEST_S3_ENDPOINT/" 2>/dev/null && return
    sleep 0.2
  done
  echo "moto's S3 server did not start; see ${TMPDIR:-/tmp}/switchyard-moto.log" >&2
  exit 1
}

ensure_postgres
ensure_redis
say "DATABASE_URL=$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"
say "REDIS_URL=$(printf '%s' "$REDIS_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')"

# Tests check what Switchyard emits with independent Python libraries: webhook deliveries
# with the official Standard Webhooks library (PyPI standardwebhooks), and the /metrics
# text with the Prometheus client's own parser (PyPI prometheus-client).
ensure_python_package() {  # module, pip package
  if python3 -c "import $1" >/dev/null 2>&1; then
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-pip
  say "installing $2 with pip"
  python3 -m pip install -q --disable-pip-version-check "$2" >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages "$2" >/dev/null
}
ensure_test_libraries() {
  ensure_python_package standardwebhooks standardwebhooks
  ensure_python_package prometheus_client prometheus-client
}

# The browser test (tests/process/browser.rs) drives Debian's headless Chromium with npm
# playwright-core, pinned in tests/browser/package-lock.json. playwright-core never
# downloads a browser; the system one is used.
ensure_browser() {
  command -v chromium >/dev/null || apt_install chromium
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d tests/browser/node_modules/playwright-core ]; then
    say "installing playwright-core with npm ci (tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}
