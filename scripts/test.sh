#!/usr/bin/env bash
# The whole test suite, as CI runs it: static checks, then pytest on a throw-away PostgreSQL
# cluster (the production store), then a smoke run on the embedded SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

export BC_LAB_DIR=${BC_LAB_DIR:-$(mktemp -d /tmp/bc-lab.XXXXXX)}
chmod 755 "$BC_LAB_DIR"
PGDIR=$(mktemp -d /tmp/bc-pgstore.XXXXXX)
PGPORT=${BC_TEST_PGPORT:-$((40000 + RANDOM % 20000))}
cleanup() {
  ./scripts/pg_cluster.sh stop "$PGDIR" || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT

echo "==> static checks"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python manage.py check
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null
./scripts/schema.sh --check

echo "==> tests on PostgreSQL"
export DATABASE_URL
DATABASE_URL=$(./scripts/pg_cluster.sh start "$PGDIR" "$PGPORT")
.venv/bin/pytest -q -p no:cacheprovider "$@"

echo "==> smoke tests on SQLite"
unset DATABASE_URL
.venv/bin/pytest -q -p no:cacheprovider -m "not integration and not e2e" tests/audit tests/inventory tests/bcservice
