#!/usr/bin/env bash
# Parses the Grafana dashboard's and the alert rules' PromQL with Prometheus's own grammar
# (scripts/promql/check.mjs; npm @prometheus-io/lezer-promql, pinned in
# scripts/promql/package-lock.json). Needs Node.js and the npm registry; the packages stay
# in scripts/promql/node_modules for the next run.
set -euo pipefail
cd "$(dirname "$0")/promql"
[ -d node_modules/@prometheus-io/lezer-promql ] || npm ci --no-audit --no-fund --silent >/dev/null
node check.mjs
