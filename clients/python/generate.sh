#!/usr/bin/env bash
# Writes src/switchyard_client/models.py, the API's shapes as pydantic models, from the
# server's OpenAPI document: `app openapi > target/openapi.json` first (at the repository's
# root). scripts/check-clients.sh runs it to a temporary file and fails on any drift.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-src/switchyard_client/models.py}"
datamodel-codegen --input ../../target/openapi.json --input-file-type openapi \
  --output "$out" --output-model-type pydantic_v2.BaseModel --target-python-version 3.10 \
  --use-annotated --field-constraints --disable-timestamp --formatters builtin \
  --custom-file-header '"""The API'"'"'s shapes, generated from its OpenAPI document by clients/python/generate.sh: do not edit."""'
