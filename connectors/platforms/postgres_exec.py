"""Shared pieces of the PostgreSQL execution plans: the two nodes, connections per purpose, a small
read of one node's role and replication state, and the limits the plans use.

Reads that only look use the ``monitor`` account (its sessions are read-only); anything that
changes the target, and the few reads a monitoring role cannot make (the server-wide value of
``default_transaction_read_only``), use ``execute``, fetched when the step runs (invariant 6).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row, tuple_row

from connectors.contract import Target
from connectors.platforms.postgres_read import classify, connect_kwargs, sanitize

SITES = ("primary", "dr")
EXECUTE_APPLICATION = "bcservice-execute"
# Setting sources that mean "what every new session gets": then SHOW tells the server's value.
_SERVER_SOURCES = ("default", "configuration file", "override", "environment variable")

T = TypeVar("T")


@dataclass(frozen=True)
class Node:
    site: str  # the configured site: "primary" or "dr"
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def nodes(target: Target) -> dict[str, Node]:
    conn = target.connection
    return {
        "primary": Node("primary", str(conn.get("primary_host") or ""), _port(conn, "primary")),
        "dr": Node("dr", str(conn.get("dr_host") or ""), _port(conn, "dr")),
    }


def _port(conn: Any, site: str) -> int:
    return int(conn.get(f"{site}_port") or 5432)


def other(site: str) -> str:
    return "dr" if site == "primary" else "primary"


@dataclass(frozen=True)
class Limits:
    """Thresholds and waits. The Target has no thresholds of its own yet: a ``Target`` attribute
    wins when present, then the connection settings, then the default (see docs)."""

    max_lag_seconds: float = 30.0  # switchover precheck (Resource.yellow_lag_seconds default)
    rpo_target_seconds: float = 60.0  # drill pass mark (Resource.rpo_target_seconds default)
    catch_up_seconds: float = 30.0  # fenced primary -> standby replayed its final LSN
    promote_seconds: float = 60.0
    streaming_seconds: float = 30.0  # rejoined node streaming again after its host action


def limits(target: Target) -> Limits:
    values: dict[str, float] = {}
    for name in Limits.__dataclass_fields__:
        raw = getattr(target, name, None)
        if raw is None:
            raw = target.connection.get(name)
        if raw is not None:
            values[name] = float(raw)
    return Limits(**values)


def credentials(target: Target, purpose: str) -> dict[str, str]:
    return {k: str(v) for k, v in dict(target.credentials(purpose) or {}).items()}


def connect(
    target: Target,
    node: Node,
    purpose: str = "monitor",
    *,
    statement_seconds: float | None = None,
    autocommit: bool = True,
    dict_rows: bool = False,
) -> psycopg.Connection:
    """A connection as ``purpose``. Monitor sessions keep the read-only option of observe();
    execute sessions carry only a statement timeout and their own application_name."""
    creds = credentials(target, purpose)
    timeout = float(target.timeout_seconds)
    kwargs = connect_kwargs(node.host, node.port, dict(target.connection), creds, timeout)
    ms = max(1000, int((statement_seconds or max(timeout, 30.0)) * 1000))
    if purpose == "execute":
        kwargs["application_name"] = EXECUTE_APPLICATION
        kwargs["options"] = f"-c statement_timeout={ms}"
    kwargs["autocommit"] = autocommit
    kwargs["row_factory"] = dict_row if dict_rows else tuple_row
    return psycopg.connect(**kwargs)


def error_text(exc: BaseException, target: Target, node: Node) -> str:
    """One credential-free line naming the node."""
    secrets = list(getattr(target.credentials, "seen", ()) or ())
    text = sanitize(str(exc) or type(exc).__name__, secrets)
    return text if node.endpoint in text else f"{node.endpoint}: {text}"


@dataclass
class NodeState:
    """One quick read of a node (monitor account)."""

    node: Node
    reachable: bool = False
    outcome: str = ""
    error: str = ""
    refused: bool = False  # nothing listens on the port: the server is down
    in_recovery: bool | None = None
    lsn: str | None = None  # current LSN on a primary, replay LSN on a standby
    receive_lsn: str | None = None
    last_replay_at: datetime | None = None
    server_time: datetime | None = None
    receiver_status: str | None = None
    sender_host: str | None = None
    sender_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.reachable:
            return f"{self.node.site} node {self.node.endpoint} unreachable ({self.error})"
        role = "standby" if self.in_recovery else "primary"
        return f"{self.node.site} node {self.node.endpoint} is a {role}"


Q_PROBE = """
SELECT pg_is_in_recovery() AS in_recovery,
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
             ELSE pg_current_wal_lsn() END)::text AS lsn,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_xact_replay_timestamp() AS last_replay_at,
       now() AS server_time,
       r.status AS receiver_status, r.sender_host, r.sender_port
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true
"""


def probe(target: Target, node: Node) -> NodeState:
    """Never raises for a target problem."""
    state = NodeState(node)
    try:
        with connect(target, node, "monitor", dict_rows=True) as db:
            row = db.execute(Q_PROBE).fetchone() or {}
    except Exception as exc:
        state.outcome = str(classify(exc))
        state.error = error_text(exc, target, node)
        state.refused = "refused" in str(exc).lower()
        return state
    state.reachable, state.outcome = True, "ok"
    for key in (
        "in_recovery",
        "lsn",
        "receive_lsn",
        "last_replay_at",
        "server_time",
        "receiver_status",
        "sender_host",
        "sender_port",
    ):
        setattr(state, key, row.get(key))
    return state


def fence_state(target: Target, node: Node) -> bool | None:
    """The server-wide ``default_transaction_read_only`` (what a new session gets): True/False,
    None when the node cannot be asked. Read over an execute session: the monitoring role's
    sessions override the setting (read-only by design), hiding the server's value. A role-level
    override on the execute role makes it unknowable here: None."""
    try:
        with connect(target, node, "execute", statement_seconds=5) as db:
            row = db.execute(
                "SELECT setting, source FROM pg_settings "
                "WHERE name = 'default_transaction_read_only'"
            ).fetchone()
    except Exception:
        return None
    if not row or row[1] not in _SERVER_SOURCES:
        return None
    return row[0] == "on"


def streams_from(state: NodeState, upstream: Node) -> bool:
    """Whether a probed node is a standby whose WAL receiver streams from ``upstream``."""
    if not (state.reachable and state.in_recovery and state.receiver_status == "streaming"):
        return False
    if state.sender_port != upstream.port:
        return False
    return state.sender_host in _addresses(upstream.host)


def _addresses(host: str) -> set[str]:
    found = {host}
    with suppress(OSError):
        found.update(info[4][0] for info in socket.getaddrinfo(host, None))
    return found


def poll(check: Callable[[], T | None], seconds: float, every: float = 0.01) -> T | None:
    """Call ``check`` until it returns something other than None, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result is not None or time.monotonic() >= deadline:
            return result
        time.sleep(every)


@contextmanager
def execute_session(target: Target, node: Node, seconds: float = 30) -> Iterator[Any]:
    with connect(target, node, "execute", statement_seconds=seconds) as db:
        yield db
