"""Client side of the lab: bring it up and down, ask the daemon, publish lab.json and secrets.

Used by ``manage.py lab``; kept out of the command so it can be driven without Django's
command machinery. ``up`` is idempotent: the PostgreSQL pair's ``up()`` is asked again (it is
idempotent itself), a live daemon is reused, and ports chosen the first time (control port in
``lab.json``, simulator ports in their state files) are kept across restarts.

``lab.json`` (read by ``demo_data`` and tests) holds, per target, the connection settings and
the secret reference; credentials go only to the secrets file (JSON, mode 0600, merged with what
is already there), under ``lab/<target>`` as ``{"monitor": {...}, "execute": {...}}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import import_module
from pathlib import Path
from typing import Any

from connectors.lab.daemon import DAEMON_FILE, LOG_FILE, PID_FILE, TARGETS

COMMON_FAULTS = ("lag", "pause", "standby_down", "primary_down", "timeout", "heal")
SNOWFLAKE_FACTORY = "connectors.lab.snowflake_sim:connect"
DAEMON_START_SECONDS = 30.0
DAEMON_STOP_SECONDS = 10.0


class LabError(Exception):
    """Something the operator must fix; the message says what."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, data: dict[str, Any], private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, default=str)
    if private:
        os.chmod(tmp, 0o600)  # umask-proof
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LabControl:
    def __init__(self, lab_dir: Path, secrets_file: Path, project_dir: Path) -> None:
        self.lab_dir = Path(lab_dir)
        self.secrets_file = Path(secrets_file)
        self.project_dir = Path(project_dir)
        self.lab_file = self.lab_dir / "lab.json"

    # -- daemon ------------------------------------------------------------------------------

    def daemon_info(self) -> dict[str, Any] | None:
        """The running daemon's daemon.json, or None when it is not running."""
        info = _read_json(self.lab_dir / DAEMON_FILE)
        pid = info.get("pid")
        if not pid or not _alive(int(pid)):
            return None
        try:
            self.request("GET", "/status", port=info["control_port"], timeout=3)
        except LabError:
            return None
        return info

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        port: int | None = None,
        timeout: float = 15,
    ) -> dict[str, Any]:
        if port is None:
            info = self.daemon_info()
            if info is None:
                raise LabError("the lab is not up: run `manage.py lab up` first")
            port = int(info["control_port"])
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # a fixed loopback http URL
            f"http://127.0.0.1:{port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise LabError(message) from None
        except (OSError, ValueError) as exc:
            raise LabError(f"the lab daemon on port {port} did not answer: {exc}") from None

    def _start_daemon(self, control_port: int) -> dict[str, Any]:
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (self.lab_dir / DAEMON_FILE).unlink()
        env = dict(os.environ, BC_LAB_DIR=str(self.lab_dir))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.project_dir), env.get("PYTHONPATH", "")) if p
        )
        with open(self.lab_dir / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(  # own session: `down` signals the whole process group
                [
                    *(sys.executable, "-m", "connectors.lab.daemon"),
                    *("--lab-dir", str(self.lab_dir), "--control-port", str(control_port)),
                ],
                cwd=self.project_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + DAEMON_START_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(f"the lab daemon exited at start:\n{self.log_tail()}")
            info = _read_json(self.lab_dir / DAEMON_FILE)
            if info.get("pid") == proc.pid:
                with contextlib.suppress(LabError):
                    self.request("GET", "/status", port=info["control_port"], timeout=2)
                    return info
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        raise LabError(f"the lab daemon did not start in {DAEMON_START_SECONDS:g} s")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.lab_dir / LOG_FILE).read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _stop_daemon(self) -> bool:
        pid = int(_read_json(self.lab_dir / DAEMON_FILE).get("pid") or 0)
        pid_file = self.lab_dir / PID_FILE
        if not pid and pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
        if not pid or not _alive(pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) != pid:  # a reused pid, not our daemon's process group
                return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # the daemon leads its own process group
        deadline = time.monotonic() + DAEMON_STOP_SECONDS
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our child (tests)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return True

    # -- PostgreSQL pair (its servers run outside the daemon) --------------------------------

    def _pg_pair(self) -> Any:
        return import_module("connectors.lab.postgres").PgPair(self.lab_dir / "postgres")

    # -- commands ----------------------------------------------------------------------------

    def up(self) -> tuple[dict[str, Any], list[str]]:
        """Start what is not running; return lab.json's content and warnings."""
        warnings: list[str] = []
        lab = _read_json(self.lab_file)
        targets: dict[str, Any] = {}
        secrets: dict[str, Any] = {}
        try:
            pg = self._pg_pair().up()
        except Exception as exc:  # the other targets remain useful without PostgreSQL
            warnings.append(f"postgres is unavailable: {type(exc).__name__}: {exc}")
        else:
            targets["postgres"] = {
                "connection": pg["connection"],
                "secret_ref": "lab/postgres",
                "heartbeat": pg.get("heartbeat") or {},
            }
            secrets["lab/postgres"] = pg["credentials"]
        info = self.daemon_info()
        if info is None:
            port = int((lab.get("daemon") or {}).get("control_port") or 0) or _free_port()
            info = self._start_daemon(port)
        for name, error in (info.get("errors") or {}).items():
            if not any(w.startswith(f"{name} ") for w in warnings):
                warnings.append(f"{name} is unavailable: {error}")
        for name, published in (info.get("targets") or {}).items():
            entry = {"connection": published["connection"], "secret_ref": f"lab/{name}"}
            if name == "snowflake":
                entry["connection_factory"] = SNOWFLAKE_FACTORY
            targets[name] = entry
            secrets[f"lab/{name}"] = published["credentials"]
        lab = {
            "targets": {name: targets[name] for name in TARGETS if name in targets},
            "daemon": {"pid": info["pid"], "control_port": info["control_port"]},
        }
        _write_json(self.lab_file, lab)
        self._merge_secrets(secrets)
        return lab, warnings

    def _merge_secrets(self, entries: dict[str, Any]) -> None:
        current = _read_json(self.secrets_file)
        current.update(entries)
        _write_json(self.secrets_file, current, private=True)

    def down(self) -> list[str]:
        done = []
        if self._stop_daemon():
            done.append("daemon stopped")
        try:
            self._pg_pair().down()
            done.append("postgres stopped")
        except Exception as exc:
            done.append(f"postgres not stopped: {type(exc).__name__}: {exc}")
        with contextlib.suppress(FileNotFoundError):
            (self.lab_dir / DAEMON_FILE).unlink()
        return done

    def status(self) -> dict[str, Any]:
        if self.daemon_info() is None:
            raise LabError("the lab is not up: run `manage.py lab up` first")
        return self.request("GET", "/status")

    def inject(self, target: str, fault: str) -> dict[str, Any]:
        if target not in TARGETS:
            raise LabError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
        supported = (self.status()["targets"].get(target) or {}).get("supported_faults")
        allowed = supported or COMMON_FAULTS
        if fault not in allowed:
            raise LabError(
                f"unknown fault {fault!r} for {target}; choose from {', '.join(allowed)}"
            )
        return self.request("POST", "/inject", {"target": target, "fault": fault})["status"]

    def commands(self, target: str) -> list[Any]:
        """What a simulator received (MongoDB commands, Snowflake statements, ...)."""
        return self.request("GET", f"/commands?target={target}")["commands"]
