#!/usr/bin/env bash
# Starts the demo on the embedded default: SQLite, the django-q2 ORM broker, the local lab
# (real PostgreSQL pair, MongoDB and SQL Server simulators, scripted Snowflake), one worker and
# the web server. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${BC_DEMO_PORT:-8000}
export BC_SNOWFLAKE_CONNECTION_FACTORY=${BC_SNOWFLAKE_CONNECTION_FACTORY:-connectors.lab.snowflake_sim:connect}
export BC_DEBUG=${BC_DEBUG:-1}
mkdir -p var

$PY manage.py migrate --no-input -v0
$PY manage.py collectstatic --no-input -v0
$PY manage.py lab up
$PY manage.py demo_data

setsid $PY manage.py qcluster >var/worker.log 2>&1 &
worker=$!
stop() {
  echo; echo "stopping worker and lab..."
  kill -TERM -- -"$worker" 2>/dev/null || true
  sleep 1; kill -KILL -- -"$worker" 2>/dev/null || true
  $PY manage.py lab down || true
}
trap stop EXIT INT TERM

echo "worker started (log: var/worker.log); web server on http://127.0.0.1:$PORT/"
echo "  admin:  http://127.0.0.1:$PORT/admin/    app: http://127.0.0.1:$PORT/app/    API docs: http://127.0.0.1:$PORT/api/docs/"
$PY manage.py runserver "127.0.0.1:$PORT" --noreload
