"""The lab daemon: one detached process hosting the simulated targets for every other process.

Started by ``manage.py lab up`` as ``python -m connectors.lab.daemon --lab-dir DIR`` in its own
session (so ``lab down`` can signal the whole process group). It hosts the MongoDB replica-set
simulator, the SQL Server availability-group simulator (when its module imports; otherwise the
reason is logged and reported, and the rest keeps working), ticks the Snowflake lab's refresh
clock, and runs the PostgreSQL pair's heartbeat (and TCP proxies, when the pair has them) every
second. The PostgreSQL servers themselves are started by ``lab up`` and outlive this process.

Faults are injected across processes through a loopback HTTP control port:
``GET /status``, ``POST /inject {"target", "fault"}``, ``GET /commands?target=T`` (what a
simulator received, for execution tests) and ``POST /shutdown``. On start it writes
``daemon.json`` (pid, control port, each target's connection and credentials; mode 0600) for
``lab up`` to publish into ``lab.json`` and the secrets file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

log = logging.getLogger("connectors.lab.daemon")

TARGETS = ("postgres", "mongodb", "mssql", "snowflake")
DAEMON_FILE, PID_FILE, LOG_FILE = "daemon.json", "daemon.pid", "daemon.log"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, default=str)
    tmp.replace(path)


class LabDaemon:
    def __init__(
        self, lab_dir: Path, control_port: int = 0, refresh_interval: float = 60.0
    ) -> None:
        self.lab_dir = Path(lab_dir)
        self.control_port = control_port
        self.refresh_interval = refresh_interval
        self.targets: dict[str, Any] = {}  # name -> simulator object
        self.published: dict[str, Any] = {}  # name -> {"connection", "credentials"} or error
        self.errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._last_tick_error: dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self._start_target("mongodb", self._make_mongodb)
        self._start_target("mssql", self._make_mssql)
        self._start_target("snowflake", self._make_snowflake)
        self._start_target("postgres", self._make_postgres)
        self._server = self._bind_control()
        threading.Thread(target=self._server.serve_forever, name="control", daemon=True).start()
        _write_private(
            self.lab_dir / DAEMON_FILE,
            {
                "pid": os.getpid(),
                "control_port": self._server.server_address[1],
                "started_at": time.time(),
                "targets": self.published,
                "errors": self.errors,
            },
        )
        (self.lab_dir / PID_FILE).write_text(str(os.getpid()))
        log.info(
            "lab daemon up in %.2f s on 127.0.0.1:%s (targets: %s; unavailable: %s)",
            time.monotonic() - started,
            self._server.server_address[1],
            ", ".join(sorted(self.targets)),
            ", ".join(f"{k} ({v})" for k, v in self.errors.items()) or "none",
        )

    def _start_target(self, name: str, make: Any) -> None:
        try:
            sim, published = make()
        except Exception as exc:  # one broken target must not take the others down
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            log.error("%s is unavailable: %s\n%s", name, exc, traceback.format_exc())
            return
        self.targets[name] = sim
        if published is not None:
            self.published[name] = published

    def _make_mongodb(self) -> tuple[Any, dict[str, Any]]:
        from connectors.lab.mongo_sim import MongoReplicaSetSimulator

        sim = MongoReplicaSetSimulator(state_path=self.lab_dir / "mongodb.json")
        return sim, sim.start()

    def _make_mssql(self) -> tuple[Any, dict[str, Any]]:
        cls = import_module("connectors.lab.mssql_sim").MssqlAgSimulator
        try:
            sim = cls(state_path=self.lab_dir / "mssql.json")
        except TypeError:  # a constructor without state_path
            sim = cls()
        return sim, sim.start()

    def _make_snowflake(self) -> tuple[Any, dict[str, Any]]:
        from connectors.lab.snowflake_sim import SnowflakeLab

        lab = SnowflakeLab(self.lab_dir / "snowflake.json", refresh_interval=self.refresh_interval)
        return lab, lab.start()

    def _make_postgres(self) -> tuple[Any, None]:
        # The pair itself is started by `lab up` (its servers outlive the daemon); the daemon
        # owns its heartbeat, proxies and faults.
        pair = import_module("connectors.lab.postgres").PgPair(self.lab_dir / "postgres")
        if hasattr(pair, "serve_proxies"):
            pair.serve_proxies()
        return pair, None

    def _bind_control(self) -> ThreadingHTTPServer:
        handler = type("Handler", (_ControlHandler,), {"daemon": self})
        try:
            return ThreadingHTTPServer(("127.0.0.1", self.control_port), handler)
        except OSError:
            log.warning("control port %s is taken; using a new one", self.control_port)
            return ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def run(self) -> None:
        """Tick every second until stopped."""
        while not self._stop.wait(1.0):
            self._tick("snowflake", "tick")
            self._tick("postgres", "heartbeat_tick")

    def _tick(self, name: str, method: str) -> None:
        target = self.targets.get(name)
        if target is None:
            return
        try:
            getattr(target, method)()
        except Exception as exc:
            # A tick fails while its target is faulted (e.g. the primary is down); say so once a
            # minute rather than every second.
            if time.monotonic() - self._last_tick_error.get(name, -1e9) > 60:
                self._last_tick_error[name] = time.monotonic()
                log.warning("%s.%s failed: %s: %s", name, method, type(exc).__name__, exc)

    def request_stop(self) -> None:
        """Safe from a signal handler: the main loop notices within a second."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        log.info("lab daemon stopping")
        if self._server is not None:
            self._server.shutdown()
        for name, target in self.targets.items():
            stop = getattr(target, "stop_proxies" if name == "postgres" else "stop", None)
            if stop is None:
                continue
            began = time.monotonic()
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", name)
            log.info("%s stopped in %.2f s", name, time.monotonic() - began)
        with contextlib.suppress(FileNotFoundError):
            (self.lab_dir / PID_FILE).unlink()
        log.info("lab daemon stopped")

    # -- control -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in TARGETS:
            if name in self.errors:
                out[name] = {"available": False, "error": self.errors[name]}
                continue
            target = self.targets.get(name)
            try:
                out[name] = {"available": True, **(target.status() if target else {})}
            except Exception as exc:
                out[name] = {"available": True, "error": f"status failed: {exc}"}
            faults = getattr(target, "faults", None)
            if isinstance(faults, tuple | list) and "supported_faults" not in out[name]:
                out[name]["supported_faults"] = list(faults)
        return {"pid": os.getpid(), "targets": out}

    def inject(self, target: str, fault: str) -> dict[str, Any]:
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
        if target in self.errors:
            raise ValueError(f"{target} is unavailable in the lab: {self.errors[target]}")
        self.targets[target].inject(fault)
        log.info("injected %s into %s", fault, target)
        return self.status()["targets"][target]

    def commands(self, target: str) -> list[Any]:
        sim = self.targets.get(target)
        for name in ("received_commands", "received_statements", "received_queries"):
            if sim is not None and hasattr(sim, name):
                return list(getattr(sim, name)())
        raise ValueError(f"{target} records no commands")


class _ControlHandler(BaseHTTPRequestHandler):
    daemon: LabDaemon

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        try:
            if url.path == "/status":
                self._reply(200, self.daemon.status())
            elif url.path == "/commands":
                target = parse_qs(url.query).get("target", [""])[0]
                self._reply(200, {"target": target, "commands": self.daemon.commands(target)})
            else:
                self._reply(404, {"error": f"no such path {url.path}"})
        except ValueError as exc:
            self._reply(400, {"error": str(exc)})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._reply(400, {"error": "body must be JSON"})
            return
        if self.path == "/inject":
            try:
                result = self.daemon.inject(str(body.get("target")), str(body.get("fault")))
            except (ValueError, RuntimeError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            except Exception as exc:
                log.exception("inject failed")
                self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._reply(200, {"ok": True, "status": result})
        elif self.path == "/shutdown":
            self._reply(200, {"ok": True})
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            self._reply(404, {"error": f"no such path {self.path}"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, required=True)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--refresh-interval", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("BC_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    daemon = LabDaemon(args.lab_dir, args.control_port, args.refresh_interval)

    def on_signal(signum: int, frame: Any) -> None:
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.start()
    daemon.run()
    daemon.stop()


if __name__ == "__main__":
    main()
