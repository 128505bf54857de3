"""Host actions: the parts of a PostgreSQL role change that SQL cannot do (stop a server, rewind a
data directory, write ``standby.signal`` and restart), run by the worker as configured commands.

``connection["host_actions"]`` maps an action name to a command template, either an argv list or
``{"argv": [...], "timeout_seconds": N}``. Each argument may hold ``{placeholders}`` (see
``PLACEHOLDERS``); they are filled with plain values (hosts, ports, a slot name), never
credentials. The command runs without a shell (no quoting or injection through values), with a
small fixed environment (the worker's own environment may hold the state store's or Vault's
secrets), its own process group (a timeout kills the whole tree), stdin closed and its output
captured, bounded and scrubbed before it reaches a step's detail.

The execution account reaches the command through ``PGUSER`` / ``PGPASSWORD`` in its
environment, never through argv (visible in ``ps`` to every local user). Used by
``postgres_steps``; documented in docs/connectors/postgres.md, "Executions".
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import string
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACTIONS = ("rejoin", "stop", "start", "restart", "fence")
# What a template may refer to. "node" is the configured site of the node acted on.
PLACEHOLDERS = (
    "node",
    "host",
    "port",
    "new_primary_node",
    "new_primary_host",
    "new_primary_port",
    "slot",
    "dbname",
)
DEFAULT_TIMEOUT_SECONDS = 300.0
OUTPUT_LIMIT = 2000  # characters of output kept for the step's detail
# Passed through from the worker when set: enough for ssh agents and for tools found on PATH.
_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "SSH_AUTH_SOCK", "TZ")
_URI = re.compile(r"postgres(?:ql)?://\S+", re.IGNORECASE)
_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class HostActionError(Exception):
    """The action is not configured or its template is unusable; the message says which."""


@dataclass(frozen=True)
class ActionSpec:
    name: str
    argv: tuple[str, ...]
    timeout_seconds: float


@dataclass
class ActionResult:
    name: str
    ok: bool
    returncode: int | None  # None: killed after the timeout
    seconds: float
    command: str  # the rendered argv, for the record (no credentials in it by construction)
    output: str  # scrubbed tail of stdout+stderr

    def summary(self) -> str:
        status = (
            "ok"
            if self.ok
            else (
                f"timed out after {self.seconds:.1f} s"
                if self.returncode is None
                else f"exit {self.returncode}"
            )
        )
        tail = f": {self.output}" if self.output else ""
        return f"host action {self.name} ({status}, {self.seconds:.2f} s){tail}"


def spec(connection: Mapping[str, Any], name: str) -> ActionSpec:
    """The configured template for ``name``; HostActionError when missing or malformed."""
    actions = connection.get("host_actions") or {}
    if not isinstance(actions, Mapping):
        raise HostActionError("host_actions must be an object of action name -> command")
    raw = actions.get(name)
    if raw is None:
        raise HostActionError(f"no {name!r} host action is configured")
    timeout = DEFAULT_TIMEOUT_SECONDS
    if isinstance(raw, Mapping):
        timeout = float(raw.get("timeout_seconds") or timeout)
        raw = raw.get("argv")
    if isinstance(raw, str):
        raise HostActionError(
            f"host action {name!r} must be a list of arguments, not a shell string"
        )
    if not isinstance(raw, list | tuple) or not raw or not all(isinstance(a, str) for a in raw):
        raise HostActionError(f"host action {name!r} must be a non-empty list of strings")
    for arg in raw:
        for _, field, _, _ in string.Formatter().parse(arg):
            if field is not None and field not in PLACEHOLDERS:
                raise HostActionError(
                    f"host action {name!r} uses unknown placeholder {{{field}}}; "
                    f"known: {', '.join(PLACEHOLDERS)}"
                )
    if timeout <= 0:
        raise HostActionError(f"host action {name!r}: timeout_seconds must be positive")
    return ActionSpec(name, tuple(raw), timeout)


def problem(connection: Mapping[str, Any], name: str) -> str:
    """Why ``name`` cannot run ("" when it is configured and well formed)."""
    try:
        spec(connection, name)
    except HostActionError as exc:
        return str(exc)
    return ""


def configured(connection: Mapping[str, Any], name: str) -> bool:
    return not problem(connection, name)


def render(action: ActionSpec, values: Mapping[str, Any]) -> list[str]:
    filled = {k: str(values.get(k, "")) for k in PLACEHOLDERS}
    return [arg.format_map(filled) for arg in action.argv]


def scrub(text: str, secrets: list[str]) -> str:
    """The last lines of ``text``, without DSNs, ``password=`` values or the secret values."""
    text = _PASSWORD.sub(r"\1***", _URI.sub("postgresql://***", text))
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    out = " | ".join(lines[-20:])
    return out if len(out) <= OUTPUT_LIMIT else "…" + out[-OUTPUT_LIMIT:]


def run(
    connection: Mapping[str, Any],
    name: str,
    values: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    timeout_seconds: float | None = None,
) -> ActionResult:
    """Run the action; never raises for the command's own failure (see ``ActionResult.ok``)."""
    action = spec(connection, name)
    argv = render(action, values)
    timeout = min(action.timeout_seconds, timeout_seconds or action.timeout_seconds)
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PGDATABASE"] = str(connection.get("dbname") or "postgres")
    env["PGSSLMODE"] = str(connection.get("sslmode") or "prefer")
    if credentials.get("username"):
        env["PGUSER"] = credentials["username"]
    if credentials.get("password"):
        env["PGPASSWORD"] = credentials["password"]
    secrets = [v for v in credentials.values() if isinstance(v, str)]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a timeout stops the whole tree
        )
    except OSError as exc:
        return ActionResult(
            name, False, -1, time.monotonic() - started, " ".join(argv), scrub(str(exc), secrets)
        )
    try:
        output, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        output, _ = proc.communicate()
        code = None
    return ActionResult(
        name=name,
        ok=code == 0,
        returncode=code,
        seconds=time.monotonic() - started,
        command=" ".join(argv),
        output=scrub(output or "", secrets),
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
