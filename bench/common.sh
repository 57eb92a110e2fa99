# Shared by the benchmark scripts (sourced): the services, and a database of the
# benchmark's own.
source scripts/services.sh

# Drops and recreates the database named $1, points DATABASE_URL at it and migrates it
# with $APP.
fresh_database() {
  as_postgres psql -p "$PG_PORT" -qtAc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
  as_postgres createdb -p "$PG_PORT" -O "$DB_ROLE" "$1"
  export DATABASE_URL="${DATABASE_URL%/*}/$1"
  LOG_LEVEL=warn "$APP" migrate
}

# Waits up to ten seconds for the app on 127.0.0.1:$1 to answer /api/health/live.
wait_live() {
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/api/health/live" 2>/dev/null && return
    sleep 0.1
  done
}
