"""Browser tests against the running service: a real Django server (runserver) and worker
(qcluster) on a throw-away SQLite store, the local lab, and Debian's Chromium driven by Playwright
(``executable_path=/usr/bin/chromium``; never ``playwright install``).

Everything runs in subprocesses with its own environment, so these tests need no Django test
database and leave the developer's var/ alone. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
PASSWORD = "e2e-Secret-2026"  # noqa: S105 - a throw-away local account


def unavailable(reason: str) -> None:
    """A missing tool skips the test here and fails it where BC_REQUIRE_E2E=1 (CI)."""
    if os.environ.get("BC_REQUIRE_E2E") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class LiveApp:
    url: str
    env: dict[str, str]
    workdir: Path

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _manage(self.env, *args, check=check)


def _manage(env: dict[str, str], *args: str, check: bool = True, timeout: int = 300):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def live_app() -> Iterator[LiveApp]:
    if not (ROOT / "frontend" / "dist" / "index.html").exists():
        pytest.skip(
            "frontend/dist is missing: build the app (cd frontend && npm ci && npm run build)"
        )
    # Under /tmp and world-traversable: the lab runs PostgreSQL as an unprivileged user.
    workdir = Path(tempfile.mkdtemp(prefix="bc-e2e-"))
    workdir.chmod(0o755)
    env = {
        **os.environ,
        "DATABASE_URL": "",
        "BC_SQLITE_PATH": str(workdir / "db.sqlite3"),
        "BC_STATIC_ROOT": str(workdir / "static"),
        "BC_LAB_DIR": str(workdir / "lab"),
        "BC_SECRETS_FILE": str(workdir / "secrets.json"),
        "BC_SNOWFLAKE_CONNECTION_FACTORY": "connectors.lab.snowflake_sim:connect",
        "BC_DEBUG": "0",
        "BC_Q_POLL": "0.2",
        "BC_Q_WORKERS": "2",
        "BC_LOG_LEVEL": "WARNING",
    }
    env.pop("BC_PRODUCTION", None)
    server = worker = None
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    logs = {name: open(workdir / f"{name}.log", "w") for name in ("server", "worker")}  # noqa: SIM115
    try:
        _manage(env, "migrate", "--no-input", "-v0")
        _manage(env, "collectstatic", "--no-input", "-v0")
        _manage(env, "lab", "up")
        _manage(env, "demo_data")
        # A requester who also holds an approver role: the app must still refuse their vote.
        _manage(
            env,
            "bc_user",
            "e2e-requester",
            "--roles",
            "operator,approver_it",
            "--password",
            PASSWORD,
        )
        _manage(env, "collect", "--once", check=False, timeout=120)
        command = [sys.executable, "manage.py"]
        server = subprocess.Popen(
            [*command, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=logs["server"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = subprocess.Popen(
            [*command, "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=logs["worker"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_until_up(url, server)
        yield LiveApp(url=url, env=env, workdir=workdir)
    finally:
        _stop(worker)
        _stop(server)
        _manage(env, "lab", "down", check=False, timeout=120)
        for log in logs.values():
            log.close()
        if os.environ.get("BC_E2E_KEEP"):
            print(f"e2e work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright: Debian's Chromium, headless, no downloads."""
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--no-sandbox", "--disable-background-networking"],
    }


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
