#!/usr/bin/env bash
# Regenerates the committed OpenAPI schema (docs/openapi.yaml); with --check, fails when it is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/openapi.yaml
tmp=$(mktemp)
db=$(mktemp -u /tmp/bc-schema.XXXXXX.sqlite3)
trap 'rm -f "$tmp" "$db"' EXIT
BC_SQLITE_PATH=$db DATABASE_URL= .venv/bin/python manage.py spectacular --file "$tmp" --validate --fail-on-warn
if [ "${1:-}" = "--check" ]; then
  if ! diff -q "$out" "$tmp" >/dev/null 2>&1; then
    echo "docs/openapi.yaml is stale: run 'make schema' and commit it" >&2
    diff -u "$out" "$tmp" | head -40 >&2 || true
    exit 1
  fi
  echo "OpenAPI schema up to date"
else
  cp "$tmp" "$out"; echo "wrote $out"
fi
