#!/usr/bin/env bash
# Checks that vendored front-end files match the packages they come from, byte for byte
# (src/console/assets/vendor/README.md lists them). Needs npm and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
check() {
  local package=$1 inside=$2 vendored=$3
  (cd "$work" && npm pack --silent "$package" >/dev/null)
  local tarball
  tarball=$(ls "$work"/*.tgz | head -1)
  tar -xzf "$tarball" -C "$work"
  if ! cmp -s "$work/package/$inside" "$vendored"; then
    echo "$vendored does not match $inside of $package" >&2
    exit 1
  fi
  echo "$vendored matches $package"
  rm -rf "$work"/*
}
check rapidoc@9.3.8 dist/rapidoc-min.js src/console/assets/vendor/rapidoc-min.js
