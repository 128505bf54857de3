#!/usr/bin/env bash
# Installs everything bcservice needs on a fresh Debian machine; safe to run again.
#   Debian packages: PostgreSQL (lab + test store), Redis (scale-out broker), Chromium (browser
#   tests), unixODBC + FreeTDS (SQL Server driver), Node.js/npm if missing (the React app).
#   Python: a virtualenv in .venv with the project and its dev extras.
#   Front end: npm ci and a production build served by Django at /app/.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql redis-server chromium unixodbc tdsodbc)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

if [ -f frontend/package.json ]; then
  lockstamp=frontend/node_modules/.installed-$(sha256sum frontend/package-lock.json 2>/dev/null | cut -c1-16)
  if [ ! -f "$lockstamp" ]; then
    echo "==> installing npm packages"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    touch "$lockstamp"
  fi
  echo "==> building the React app"
  (cd frontend && npm run build --silent >/dev/null)
fi
