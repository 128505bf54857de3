#!/usr/bin/env bash
# Logical backup of the service's own PostgreSQL store (see docs/operations.md).
#   DATABASE_URL=postgres://… scripts/backup.sh [DIR]
# Keeps the newest 48 files; bc_selfcheck fails when the newest is older than 24 h.
set -euo pipefail
dir=${1:-${BC_BACKUP_DIR:-var/backups}}
: "${DATABASE_URL:?DATABASE_URL must point at the service's PostgreSQL store}"
mkdir -p "$dir"
out="$dir/bcservice-$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump --format=custom --no-owner --file="$out.partial" "$DATABASE_URL"
mv "$out.partial" "$out"
ls -1t "$dir"/bcservice-*.dump | tail -n +49 | xargs -r rm -f
echo "$out"
