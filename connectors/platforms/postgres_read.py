"""Reading one PostgreSQL node for ``PostgresConnector``: connect, run the read-only queries,
turn failures into an ``Outcome`` with credential-free text.

Every query is here, verbatim, and explained in docs/connectors/postgres.md. The monitoring
account needs ``pg_monitor`` (for ``pg_control_checkpoint()``, the full ``pg_stat_replication``
and ``pg_stat_wal_receiver``) and SELECT on the heartbeat table; nothing here writes, and the
session is opened with ``default_transaction_read_only=on`` besides.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row

from connectors.contract import HeartbeatConfig, Outcome, Role, SideObservation

APPLICATION_NAME = "bcservice-monitor"

Q_NODE = """
SELECT pg_is_in_recovery() AS in_recovery,
       now() AS server_time,
       current_setting('server_version') AS server_version,
       current_setting('cluster_name') AS cluster_name,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS can_read_stats,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_timeline
"""
Q_PRIMARY = """
SELECT pg_current_wal_lsn()::text AS current_lsn,
       pg_walfile_name(pg_current_wal_lsn()) AS current_walfile
"""
Q_REPLICATION = """
SELECT pid, application_name, host(client_addr) AS client_addr, state,
       sent_lsn::text AS sent_lsn, write_lsn::text AS write_lsn,
       flush_lsn::text AS flush_lsn, replay_lsn::text AS replay_lsn,
       extract(epoch FROM write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds,
       sync_state, reply_time
FROM pg_stat_replication
ORDER BY pid
"""
Q_SLOTS = """
SELECT slot_name, active, active_pid, restart_lsn::text AS restart_lsn, wal_status,
       safe_wal_size
FROM pg_replication_slots
WHERE slot_type = 'physical'
ORDER BY slot_name
"""
Q_STANDBY = """
SELECT pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_last_xact_replay_timestamp() AS last_xact_replay_at,
       pg_is_wal_replay_paused() AS replay_paused,
       pg_get_wal_replay_pause_state() AS pause_state,
       current_setting('recovery_min_apply_delay') AS recovery_min_apply_delay
"""
Q_WAL_RECEIVER = """
SELECT status, received_tli, flushed_lsn::text AS flushed_lsn,
       latest_end_lsn::text AS latest_end_lsn, latest_end_time, last_msg_receipt_time,
       slot_name, sender_host, sender_port
FROM pg_stat_wal_receiver
"""
Q_HEARTBEAT = "SELECT max({column}) AS heartbeat FROM {table}"


@dataclass
class NodeRead:
    """What was read from one node; ``obs`` is the side as the contract reports it."""

    obs: SideObservation
    in_recovery: bool | None = None
    server_time: datetime | None = None
    cluster_name: str = ""
    timeline: int | None = None
    current_lsn: str | None = None  # on a primary
    replication: list[dict[str, Any]] = field(default_factory=list)  # on a primary
    slots: list[dict[str, Any]] = field(default_factory=list)
    receive_lsn: str | None = None  # on a standby
    replay_lsn: str | None = None
    last_xact_replay_at: datetime | None = None
    replay_paused: bool | None = None
    apply_delay: str = ""
    wal_receiver: dict[str, Any] | None = None
    heartbeat: datetime | None = None
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.obs.reachable


def lsn_int(lsn: str | None) -> int | None:
    """``'16/B374D848'`` -> byte position; None for a missing or malformed LSN."""
    if not lsn or "/" not in lsn:
        return None
    high, _, low = lsn.partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


def jsonable(value: Any) -> Any:
    """Query results -> JSON-safe values for ``raw``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    return value


# -- errors -----------------------------------------------------------------------------------

_URI = re.compile(r"postgres(?:ql)?://\S+", re.IGNORECASE)
_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def sanitize(text: str, secrets: list[str]) -> str:
    """Bounded one-line text without DSNs, ``password=...`` pairs or the secret values."""
    text = _PASSWORD.sub(r"\1***", _URI.sub("postgresql://***", text))
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:300]


def classify(exc: BaseException) -> Outcome:
    """psycopg errors -> outcome. Connection failures carry no SQLSTATE, hence the text."""
    if isinstance(exc, errors.InsufficientPrivilege):
        return Outcome.PERMISSION_DENIED
    if isinstance(exc, errors.QueryCanceled | errors.ConnectionTimeout | TimeoutError):
        return Outcome.TIMEOUT  # statement_timeout, connect_timeout
    if isinstance(exc, errors.InvalidPassword | errors.InvalidAuthorizationSpecification):
        return Outcome.AUTH_FAILED
    text = str(exc).lower()
    if any(
        s in text
        for s in (
            "password authentication failed",
            "no pg_hba.conf entry",
            "no password supplied",
            "authentication failed",
        )
    ):
        return Outcome.AUTH_FAILED
    if "permission denied" in text:
        return Outcome.PERMISSION_DENIED  # e.g. no CONNECT privilege on the database
    if "timeout expired" in text or "timed out" in text:
        return Outcome.TIMEOUT
    if isinstance(exc, psycopg.OperationalError | OSError):
        return Outcome.CONNECTION_ERROR  # refused, unreachable, unknown host, shutting down
    return Outcome.ERROR


# -- reading ----------------------------------------------------------------------------------


def connect_kwargs(
    host: str, port: int, conn: dict[str, Any], creds: dict[str, str], timeout: float
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "dbname": conn.get("dbname") or "postgres",
        "sslmode": conn.get("sslmode") or "prefer",
        # libpq counts whole seconds, two at least.
        "connect_timeout": max(2, round(timeout)),
        "application_name": APPLICATION_NAME,
        "options": (
            f"-c statement_timeout={max(1, int(timeout * 1000))} "
            "-c default_transaction_read_only=on"
        ),
        "autocommit": True,
        "row_factory": dict_row,
    }
    if creds.get("username"):
        kwargs["user"] = creds["username"]
    if creds.get("password"):
        kwargs["password"] = creds["password"]
    return kwargs


def read_node(
    site: str,
    host: str,
    port: int,
    conn: dict[str, Any],
    creds: dict[str, str],
    timeout: float,
    heartbeat: HeartbeatConfig | None,
) -> NodeRead:
    """Read one node; never raises (every failure becomes the side's outcome)."""
    node = NodeRead(SideObservation(site=site, endpoint=f"{host}:{port}"))
    if not host:
        node.obs.outcome, node.obs.error = Outcome.NOT_CONFIGURED, f"no {site}_host set"
        return node
    try:
        with psycopg.connect(**connect_kwargs(host, port, conn, creds, timeout)) as db:
            _read(db, node, heartbeat, list(creds.values()))
    except Exception as exc:  # never raise: every failure becomes an outcome
        node.obs.outcome = classify(exc)
        text = sanitize(str(exc) or type(exc).__name__, list(creds.values()))
        node.obs.error = text if node.obs.endpoint in text else f"{node.obs.endpoint}: {text}"
    _describe(node)
    return node


def _read(
    db: psycopg.Connection, node: NodeRead, heartbeat: HeartbeatConfig | None, secrets: list[str]
) -> None:
    row = db.execute(Q_NODE).fetchone() or {}
    node.raw["node"] = jsonable(row)
    node.in_recovery = row.get("in_recovery")
    node.server_time = row.get("server_time")
    node.cluster_name = row.get("cluster_name") or ""
    node.timeline = row.get("checkpoint_timeline")
    # Without pg_monitor (which grants pg_read_all_stats) the replication views answer with
    # NULLs instead of an error; what is read then says nothing about replication.
    hidden = row.get("can_read_stats") is False
    if node.in_recovery is False:
        row = db.execute(Q_PRIMARY).fetchone() or {}
        node.raw["primary"] = jsonable(row)
        node.current_lsn = row.get("current_lsn")
        walfile = row.get("current_walfile") or ""
        if len(walfile) >= 8:
            node.timeline = int(walfile[:8], 16)  # the timeline being written now
        node.replication = list(db.execute(Q_REPLICATION).fetchall())
        node.raw["pg_stat_replication"] = jsonable(node.replication)
    else:
        row = db.execute(Q_STANDBY).fetchone() or {}
        node.raw["standby"] = jsonable(row)
        node.receive_lsn, node.replay_lsn = row.get("receive_lsn"), row.get("replay_lsn")
        node.last_xact_replay_at = row.get("last_xact_replay_at")
        node.replay_paused = bool(row.get("replay_paused")) or row.get("pause_state") not in (
            None,
            "not paused",
        )
        node.apply_delay = row.get("recovery_min_apply_delay") or ""
        node.wal_receiver = db.execute(Q_WAL_RECEIVER).fetchone()
        node.raw["pg_stat_wal_receiver"] = jsonable(node.wal_receiver)
        if node.wal_receiver and node.wal_receiver.get("received_tli"):
            node.timeline = node.wal_receiver["received_tli"]  # the timeline it follows
    node.slots = list(db.execute(Q_SLOTS).fetchall())
    node.raw["pg_replication_slots"] = jsonable(node.slots)
    if hidden:
        node.obs.outcome = Outcome.PERMISSION_DENIED
        node.obs.error = (
            f"{node.obs.endpoint}: permission denied: the monitoring role is not a member of "
            "pg_monitor, so pg_stat_replication and pg_stat_wal_receiver hide their columns"
        )
        return
    if heartbeat is not None:
        # Last, and on its own: a missing table or grant is a note, not a blind side.
        try:
            query = sql.SQL(Q_HEARTBEAT).format(
                column=sql.Identifier(heartbeat.column),
                table=sql.Identifier(*heartbeat.table.split(".")),
            )
            node.heartbeat = (db.execute(query).fetchone() or {}).get("heartbeat")
            node.raw["heartbeat"] = jsonable(node.heartbeat)
        except psycopg.Error as exc:
            text = sanitize(str(exc), secrets)
            node.notes.append(f"{node.obs.site}: heartbeat table not readable: {text}")
            node.raw["heartbeat_error"] = text


def _describe(node: NodeRead) -> None:
    obs = node.obs
    if node.in_recovery is not None:
        obs.role = Role.STANDBY if node.in_recovery else Role.PRIMARY
    if not obs.reachable:
        return
    if node.in_recovery:
        obs.marker = node.replay_lsn
        status = (node.wal_receiver or {}).get("status")
        obs.healthy = status == "streaming"
    else:
        obs.marker = node.current_lsn
        obs.healthy = True
    obs.details = jsonable(
        {
            "in_recovery": node.in_recovery,
            "cluster_name": node.cluster_name,
            "timeline": node.timeline,
            "current_lsn": node.current_lsn,
            "receive_lsn": node.receive_lsn,
            "replay_lsn": node.replay_lsn,
            "last_xact_replay_at": node.last_xact_replay_at,
            "replay_paused": node.replay_paused,
            "recovery_min_apply_delay": node.apply_delay or None,
            "wal_receiver_status": (node.wal_receiver or {}).get("status"),
            "standbys": [
                {k: r.get(k) for k in ("application_name", "state", "sync_state", "replay_lsn")}
                for r in node.replication
            ],
            "heartbeat": node.heartbeat,
        }
    )
