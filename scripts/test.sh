#!/usr/bin/env bash
# Runs the full test suite against real PostgreSQL, Redis and an S3-compatible server:
# ensures all are running (installing them with apt-get or pip where missing), then runs
# every test. Extra arguments go to the test runner, e.g. `scripts/test.sh outages`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
# The TLS tests make their certificates with the openssl command and start a TLS-only
# redis-server of their own.
command -v openssl >/dev/null || apt_install openssl
command -v curl >/dev/null || apt_install curl
ensure_test_libraries
ensure_browser
ensure_redis_cluster
S3_STARTED_PID=""
ensure_s3
# The S3 server is started for the tests alone; stop it after them, whatever they did.
trap '[ -n "$S3_STARTED_PID" ] && kill "$S3_STARTED_PID" 2>/dev/null || true' EXIT
say "SWITCHYARD_TEST_S3_ENDPOINT=$SWITCHYARD_TEST_S3_ENDPOINT"
say "SWITCHYARD_TEST_REDIS_CLUSTER=$SWITCHYARD_TEST_REDIS_CLUSTER"
if cargo nextest --version >/dev/null 2>&1; then
  say "running the tests with cargo nextest"
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  say "running the tests with cargo test"
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi
# The client libraries' suites, against a real `app dev`. Only on a full run.
client_status=0
if [ "$#" -eq 0 ]; then
  scripts/test-clients.sh || client_status=$?
fi
# The cluster pass: the queue, worker, scheduler and realtime suites again, every mode
# talking to the 3-master cluster. Left out: the tests that cut Redis through a TCP proxy,
# which stands for one server. Only on a full run (no arguments).
if [ "$#" -eq 0 ]; then
  say "running the queue, worker, scheduler and realtime suites against the Redis Cluster"
  cluster_suites='(binary(api) & test(/^(queue|worker|jobs|schedules|realtime)::/))
    | (binary(process) & test(/^(jobs|scheduler|realtime)::/))'
  outages='test(=schedules::a_redis_blip_at_a_tick_delays_it_instead_of_losing_it)
    | test(=realtime::after_losing_redis_a_replica_recovers_the_events_its_sockets_missed)'
  status=0
  if cargo nextest --version >/dev/null 2>&1; then
    SWITCHYARD_TEST_ON_CLUSTER=1 cargo nextest run --no-fail-fast --test api --test process \
      -E "($cluster_suites) - ($outages)" || status=$?
  else
    SWITCHYARD_TEST_ON_CLUSTER=1 cargo test --no-fail-fast --test api -- \
      queue:: worker:: jobs:: schedules:: realtime:: \
      --skip a_redis_blip_at_a_tick_delays_it_instead_of_losing_it || status=$?
  fi
  # The tests leave their keys behind on the cluster, which is theirs alone.
  for seed in ${SWITCHYARD_TEST_REDIS_CLUSTER//,/ }; do
    port="${seed##*:}"
    redis-cli -p "$port" FLUSHALL >/dev/null 2>&1 || true
  done
  [ "$status" -ne 0 ] && exit "$status"
  exit "$client_status"
fi
