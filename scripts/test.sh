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
S3_STARTED_PID=""
ensure_s3
# The S3 server is started for the tests alone; stop it after them, whatever they did.
trap '[ -n "$S3_STARTED_PID" ] && kill "$S3_STARTED_PID" 2>/dev/null || true' EXIT
say "SWITCHYARD_TEST_S3_ENDPOINT=$SWITCHYARD_TEST_S3_ENDPOINT"
if cargo nextest --version >/dev/null 2>&1; then
  say "running the tests with cargo nextest"
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  say "running the tests with cargo test"
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi
