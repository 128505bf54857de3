"""Runs the React app's type check and component tests (Vitest) as part of the Python suite,
so CI exercises them; skipped when the npm packages are not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

FRONTEND = Path(settings.BASE_DIR) / "frontend"

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None or not (FRONTEND / "node_modules").is_dir(),
    reason="npm packages not installed: run scripts/bootstrap.sh (or npm ci in frontend/)",
)


def _npm(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", "run", "--silent", *args],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CI": "true", "FORCE_COLOR": "0"},
    )


def test_typescript_type_check() -> None:
    result = _npm("typecheck", timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_component_tests() -> None:
    result = _npm("test", timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]


def test_generated_types_match_the_committed_schema(tmp_path: Path) -> None:
    """src/api/schema.d.ts is `npm run gen:types` of docs/openapi.yaml, kept in step with it."""
    out = tmp_path / "schema.d.ts"
    result = subprocess.run(
        ["npx", "--no-install", "openapi-typescript", "../docs/openapi.yaml", "-o", str(out)],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    committed = (FRONTEND / "src" / "api" / "schema.d.ts").read_text()
    assert out.read_text() == committed, (
        "frontend/src/api/schema.d.ts is stale: run `cd frontend && npm run gen:types` "
        "after regenerating docs/openapi.yaml, then `npm run typecheck`"
    )
