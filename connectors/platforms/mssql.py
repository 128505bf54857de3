"""SQL Server Always On availability groups: read-only observation with pyodbc.

Each configured replica (the one at the primary site and the one at the DR site) is reached
separately, in parallel, through ODBC (FreeTDS by default): one unreachable side does not hide
the other, and one that hangs costs at most about ``timeout_seconds``. Every query is a plain
batch without parameters (FreeTDS cannot run ``sp_prepexec``); the only value interpolated is
the availability group name, which must match a strict identifier pattern and is quoted as an
N'' literal. The monitoring login needs VIEW SERVER STATE and VIEW ANY DEFINITION; nothing here
writes. Queries, column meanings and the lag estimate are in docs/connectors/mssql.md; turning
the rows into roles, markers, lag and a replication state is ``mssql_assess``.

Executions (switchover, failover, failback, drill) are planned in ``mssql_plan``; their steps talk
to one replica at a time through ``ReplicaSession`` below.
"""

from __future__ import annotations

import contextlib
import math
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import pyodbc

from connectors.contract import (
    Capability,
    Connector,
    Observation,
    Outcome,
    PlanStep,
    Support,
    Target,
)
from connectors.platforms.mssql_assess import Side, assemble, describe
from inventory.connection_settings import with_defaults

# sysname-safe subset: letters, digits, _ . - (no quotes, brackets or spaces to escape).
AG_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

SERVER_QUERY = (
    "SELECT @@SERVERNAME AS server_name,"
    " CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version,"
    " CAST(SERVERPROPERTY('IsHadrEnabled') AS int) AS is_hadr_enabled;"
)
REPLICAS_QUERY = """
SELECT ag.name AS ag_name, ar.replica_server_name, ar.availability_mode_desc,
       ar.failover_mode_desc, ar.secondary_role_allow_connections_desc,
       ars.is_local, ars.role_desc, ars.operational_state_desc, ars.connected_state_desc,
       ars.synchronization_health_desc, ars.last_connect_error_number,
       ars.last_connect_error_description, ars.last_connect_error_timestamp
FROM sys.availability_groups AS ag
JOIN sys.availability_replicas AS ar ON ar.group_id = ag.group_id
LEFT JOIN sys.dm_hadr_availability_replica_states AS ars ON ars.replica_id = ar.replica_id
WHERE ag.name = {ag};"""
DATABASES_QUERY = """
SELECT ar.replica_server_name, adc.database_name, drs.is_local, drs.is_primary_replica,
       drs.synchronization_state_desc, drs.synchronization_health_desc, drs.is_suspended,
       drs.suspend_reason_desc, drs.last_hardened_lsn, drs.last_redone_lsn,
       drs.last_commit_lsn, drs.last_commit_time, drs.end_of_log_lsn,
       drs.log_send_queue_size, drs.log_send_rate, drs.redo_queue_size, drs.redo_rate,
       drs.secondary_lag_seconds
FROM sys.dm_hadr_database_replica_states AS drs
JOIN sys.availability_replicas AS ar ON ar.replica_id = drs.replica_id
JOIN sys.availability_groups AS ag ON ag.group_id = drs.group_id
JOIN sys.availability_databases_cluster AS adc
  ON adc.group_id = drs.group_id AND adc.group_database_id = drs.group_database_id
WHERE ag.name = {ag};"""
HEARTBEAT_QUERY = "SELECT MAX({column}) AS heartbeat_at FROM {table};"
# One replica's own view, for execution steps: its role and link, its clock, and its own
# database rows (recovery_lsn: where a new primary took over).
LOCAL_QUERY = """
SELECT ar.replica_server_name, ar.availability_mode_desc, ars.role_desc,
       ars.connected_state_desc, ars.synchronization_health_desc,
       ars.last_connect_error_timestamp, SYSDATETIME() AS server_now,
       SYSUTCDATETIME() AS server_utc_now
FROM sys.dm_hadr_availability_replica_states AS ars
JOIN sys.availability_replicas AS ar ON ar.replica_id = ars.replica_id
JOIN sys.availability_groups AS ag ON ag.group_id = ars.group_id
WHERE ag.name = {ag} AND ars.is_local = 1;
SELECT adc.database_name, drs.synchronization_state_desc, drs.database_state_desc,
       drs.is_suspended, drs.suspend_reason_desc, drs.recovery_lsn, drs.last_hardened_lsn,
       drs.last_redone_lsn, drs.last_commit_time
FROM sys.dm_hadr_database_replica_states AS drs
JOIN sys.availability_databases_cluster AS adc
  ON adc.group_id = drs.group_id AND adc.group_database_id = drs.group_database_id
JOIN sys.availability_groups AS ag ON ag.group_id = drs.group_id
WHERE ag.name = {ag} AND drs.is_local = 1;"""

_SYNC = "requires a synchronous-commit secondary that is SYNCHRONIZED (planned manual failover)"
_EXECUTE = "the execution login needs ALTER AVAILABILITY GROUP on the availability group"


def ag_literal(name: str) -> str:
    """The AG name as an N'' literal; refuses anything but a plain identifier."""
    if not AG_NAME_RE.match(name or ""):
        raise ValueError(f"availability group name {name!r} is not a plain identifier")
    return "N'" + name.replace("'", "''") + "'"


def quoted(identifier: str) -> str:
    """``schema.table`` or ``table`` -> ``[schema].[table]`` after a strict check."""
    parts = identifier.split(".")
    if not 1 <= len(parts) <= 3 or not all(IDENT_RE.match(p) for p in parts):
        raise ValueError(f"{identifier!r} is not a plain (schema-qualified) identifier")
    return ".".join(f"[{p}]" for p in parts)


def _odbc_value(value: Any, freetds: bool) -> str:
    """An ODBC connection-string value, braced when it holds ; { } = or edge spaces.

    The ODBC rule doubles a closing brace inside braces; FreeTDS (1.3) does not undo the
    doubling and ends a braced value at the first ``}`` followed by ``;`` (measured), so for it
    the value goes in braces as it is, and one containing ``};`` cannot be passed at all.
    """
    text = str(value)
    if not (any(c in text for c in ";{}=") or text != text.strip()):
        return text
    if not freetds:
        return "{" + text.replace("}", "}}") + "}"
    if "};" in text:
        raise ValueError("a value containing '};' cannot be passed to FreeTDS")
    return "{" + text + "}"


def connection_string(
    conn: dict[str, Any], site: str, creds: dict[str, str], app: str = "bcservice-monitor"
) -> str:
    """Connection string for one replica. Always DATABASE=master: a non-readable secondary
    refuses connections to its availability databases, and every DMV read here is
    server-scoped."""
    driver = str(conn.get("driver") or "FreeTDS")
    host, port = conn.get(f"{site}_server"), int(conn.get(f"{site}_port") or 1433)
    freetds = "freetds" in driver.lower()
    parts = [f"DRIVER={{{driver}}}"]
    if freetds:
        parts += [f"SERVER={_odbc_value(host, freetds)}", f"PORT={port}", "TDS_Version=7.4"]
        if conn.get("encrypt"):
            parts.append("Encryption=require")
    else:  # Microsoft's ODBC Driver 17/18 syntax
        parts += [f"SERVER={_odbc_value(f'tcp:{host},{port}', freetds)}"]
        parts.append("Encrypt=yes" if conn.get("encrypt") else "Encrypt=no")
    parts += ["DATABASE=master", f"APP={app}"]
    if creds.get("username"):
        parts += [
            f"UID={_odbc_value(creds['username'], freetds)}",
            f"PWD={_odbc_value(creds.get('password', ''), freetds)}",
        ]
    return ";".join(parts) + ";"


class MssqlConnector(Connector):
    platform = "mssql"

    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        conditional = Support.CONDITIONAL
        heartbeat = (
            Capability(Support.YES)
            if target is not None and target.heartbeat is not None
            else Capability(
                conditional,
                "needs a heartbeat table updated on the primary (UTC, e.g. SYSUTCDATETIME()) "
                "and readable on the DR replica (readable secondary); configure it on the "
                "resource",
            )
        )
        # Static text only: capabilities are shown before anything runs and must not fetch
        # credentials or touch the replicas; the prechecks find out whether the condition holds.
        return {
            "monitor": Capability(Support.YES),
            "replication_marker": Capability(Support.YES),
            "heartbeat": heartbeat,
            "switchover": Capability(conditional, f"{_SYNC}; {_EXECUTE}"),
            "failover": Capability(
                conditional,
                "forced failover allows data loss (FORCE_FAILOVER_ALLOW_DATA_LOSS); refused "
                f"while the old primary is still PRIMARY unless the operator overrides; {_EXECUTE}",
            ),
            "failback": Capability(
                conditional,
                "resumes the former primary's suspended databases (ALTER DATABASE ... SET HADR "
                f"RESUME), then a planned failover back to the primary site: {_SYNC}",
            ),
            "drill": Capability(
                Support.YES,
                "read-only: measures how long the DR replica takes to redo past the primary's "
                "hardened LSN, against the RPO target; no write marker, roles never change",
            ),
        }

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        """Prechecks, steps and postchecks for ``kind`` (see ``mssql_plan``); no I/O here."""
        from connectors.platforms import mssql_plan  # it imports this module

        return mssql_plan.build(kind, target)

    def observe(self, target: Target) -> Observation:
        observed_at = datetime.now(UTC)
        conn = with_defaults(self.platform, dict(target.connection))
        # A secret that cannot be resolved is not a target problem: SecretError propagates.
        creds = dict(target.credentials("monitor") or {})
        # Each ODBC call has its own timeout, but FreeTDS waits a second timeout for the
        # acknowledgement of the cancel it sends after a query timeout (measured: 4.0 s for
        # T = 2). The overall guard makes sure a driver that never returns cannot hold the
        # caller: such a side is reported as a timeout and its thread ends on its own.
        seconds = max(1, math.ceil(target.timeout_seconds))
        guard = 3 * seconds + 1
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mssql-observe")
        try:
            futures = {
                site: pool.submit(self._observe_side, site, conn, creds, target)
                for site in ("primary", "dr")
            }
            sides = {}
            for site, future in futures.items():
                try:
                    sides[site] = future.result(timeout=guard)
                except FutureTimeout:
                    side = Side.new(site, _endpoint(conn, site), conn.get(f"{site}_replica") or "")
                    side.obs.outcome = Outcome.TIMEOUT
                    side.obs.error = f"{side.obs.endpoint}: no answer within {guard} s"
                    sides[site] = side
        finally:
            pool.shutdown(wait=False)
        return assemble(observed_at, conn, sides["primary"], sides["dr"])

    # -- one side ----------------------------------------------------------------------------

    def _observe_side(
        self, site: str, conn: dict[str, Any], creds: dict[str, str], target: Target
    ) -> Side:
        side = Side.new(site, _endpoint(conn, site), conn.get(f"{site}_replica") or "")
        if not conn.get(f"{site}_server"):
            side.obs.outcome, side.obs.error = Outcome.NOT_CONFIGURED, f"no {site}_server set"
            return side
        try:
            ag = ag_literal(str(conn.get("availability_group") or ""))
            connstr = connection_string(conn, site, creds)
        except ValueError as exc:  # the message never holds the offending value
            side.obs.outcome, side.obs.error = Outcome.NOT_CONFIGURED, str(exc)
            return side
        # ODBC timeouts are whole seconds: login timeout for connect+login, query timeout after.
        seconds = max(1, math.ceil(target.timeout_seconds))
        cnxn = None
        try:
            cnxn = pyodbc.connect(connstr, timeout=seconds, autocommit=True)
            cnxn.timeout = seconds
            cursor = cnxn.cursor()
            cursor.execute(
                SERVER_QUERY + REPLICAS_QUERY.format(ag=ag) + DATABASES_QUERY.format(ag=ag)
            )
            sets = _result_sets(cursor)
            side.server = (sets[0] or [{}])[0] if sets else {}
            side.replicas = sets[1] if len(sets) > 1 else []
            side.databases = sets[2] if len(sets) > 2 else []
            describe(side, conn)
            if site == "dr" and target.heartbeat is not None and side.obs.reachable:
                self._read_heartbeat(cursor, side, conn, target)
        except pyodbc.Error as exc:
            side.obs.outcome = classify(exc)
            side.obs.error = f"{side.obs.endpoint}: {error_text(exc, creds, connstr)}"
        except Exception as exc:  # never raise: every failure becomes an outcome
            side.obs.outcome = Outcome.ERROR
            side.obs.error = f"{side.obs.endpoint}: {type(exc).__name__}: {exc}"[:300]
        finally:
            if cnxn is not None:
                with contextlib.suppress(pyodbc.Error):  # the session may be gone already
                    cnxn.close()
        return side

    @staticmethod
    def _read_heartbeat(
        cursor: pyodbc.Cursor, side: Side, conn: dict[str, Any], target: Target
    ) -> None:
        assert target.heartbeat is not None
        table = target.heartbeat.table
        try:
            if table.count(".") < 2 and side.database:
                # Connected to master: name the availability database explicitly.
                table = f"{side.database}.{table if '.' in table else 'dbo.' + table}"
            sql = HEARTBEAT_QUERY.format(
                column=quoted(target.heartbeat.column), table=quoted(table)
            )
            cursor.execute(sql)
            row = cursor.fetchone()
        except (ValueError, pyodbc.Error) as exc:
            side.heartbeat_error = (
                str(exc) if isinstance(exc, ValueError) else error_text(exc, {}, "")
            )
            return
        value = row[0] if row else None
        if isinstance(value, datetime):
            # The documented convention: the heartbeat column holds UTC.
            side.heartbeat = value if value.tzinfo else value.replace(tzinfo=UTC)


class ReplicaError(Exception):
    """Talking to one replica failed. The message is sanitized; ``outcome`` says how."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass
class LocalState:
    """What one replica says about itself (``LOCAL_QUERY``)."""

    replica: str
    role: str  # PRIMARY, SECONDARY, RESOLVING
    availability_mode: str
    connected: str  # a secondary's link to its primary
    health: str
    lost_primary_at: datetime | None  # last_connect_error_timestamp (its own clock)
    server_now: datetime  # SYSDATETIME(): the server's local clock, as DMV times are
    utc_offset: timedelta  # SYSDATETIME() - SYSUTCDATETIME(), to the minute
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def server_utc_now(self) -> datetime:
        return self.server_now - self.utc_offset


class ReplicaSession:
    """One ODBC session to the replica at ``site``, for execution steps and their checks.

    Credentials are fetched on entry for ``purpose`` ("execute" only inside a state-changing
    step), never kept after the session closes. Every pyodbc error becomes a ``ReplicaError``
    with the same sanitized text and outcome that ``observe()`` would report.
    """

    def __init__(self, target: Target, site: str, purpose: str = "monitor") -> None:
        self.target, self.site, self.purpose = target, site, purpose
        self.conn = with_defaults("mssql", dict(target.connection))
        self.endpoint = _endpoint(self.conn, site)
        self.seconds = max(1, math.ceil(target.timeout_seconds))
        self._cnxn: Any = None
        self._creds: dict[str, str] = {}
        self._connstr = ""

    def __enter__(self) -> Self:
        if not self.conn.get(f"{self.site}_server"):
            raise ReplicaError(f"no {self.site}_server set", Outcome.NOT_CONFIGURED)
        self._creds = dict(self.target.credentials(self.purpose) or {})
        try:
            self.ag = ag_literal(str(self.conn.get("availability_group") or ""))
            app = f"bcservice-{self.purpose}"
            self._connstr = connection_string(self.conn, self.site, self._creds, app)
        except ValueError as exc:
            raise ReplicaError(str(exc), Outcome.NOT_CONFIGURED) from None
        try:
            self._cnxn = pyodbc.connect(self._connstr, timeout=self.seconds, autocommit=True)
            self._cnxn.timeout = self.seconds
        except pyodbc.Error as exc:
            raise self._error(exc) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cnxn is not None:
            with contextlib.suppress(pyodbc.Error):
                self._cnxn.close()
        self._cnxn, self._creds, self._connstr = None, {}, ""

    def _error(self, exc: pyodbc.Error) -> ReplicaError:
        text = error_text(exc, self._creds, self._connstr)
        return ReplicaError(f"{self.endpoint}: {text}", classify(exc))

    def run(self, sql: str, timeout: int | None = None) -> list[list[dict[str, Any]]]:
        """Run one batch; every result set as a list of {column: value}."""
        try:
            self._cnxn.timeout = timeout or self.seconds
            cursor = self._cnxn.cursor()
            cursor.execute(sql)
            return _result_sets(cursor)
        except pyodbc.Error as exc:
            raise self._error(exc) from None
        finally:
            with contextlib.suppress(pyodbc.Error):
                self._cnxn.timeout = self.seconds

    def local_state(self) -> LocalState:
        sets = self.run(LOCAL_QUERY.format(ag=self.ag))
        replica = (sets[0] or [None])[0] if sets else None
        if replica is None:
            raise ReplicaError(
                f"{self.endpoint}: availability group not visible here (not found, HADR off, "
                "or the login lacks VIEW ANY DEFINITION)",
                Outcome.ERROR,
            )
        now, utc = replica["server_now"], replica["server_utc_now"]
        offset = timedelta(minutes=round((now - utc).total_seconds() / 60))
        return LocalState(
            replica=replica["replica_server_name"],
            role=str(replica["role_desc"] or ""),
            availability_mode=str(replica["availability_mode_desc"] or ""),
            connected=str(replica["connected_state_desc"] or ""),
            health=str(replica["synchronization_health_desc"] or ""),
            lost_primary_at=replica["last_connect_error_timestamp"],
            server_now=now,
            utc_offset=offset,
            databases={d["database_name"]: d for d in (sets[1] if len(sets) > 1 else [])},
        )


def _endpoint(conn: dict[str, Any], site: str) -> str:
    return f"{conn.get(f'{site}_server') or ''}:{conn.get(f'{site}_port') or 1433}"


def _result_sets(cursor: pyodbc.Cursor) -> list[list[dict[str, Any]]]:
    """Every result set of the batch, as lists of {column: value}."""
    sets: list[list[dict[str, Any]]] = []
    while True:
        if cursor.description:
            names = [d[0] for d in cursor.description]
            sets.append([dict(zip(names, row, strict=True)) for row in cursor.fetchall()])
        if not cursor.nextset():
            return sets


_PERMISSION = re.compile(r"permission|\((229|297|300|15151|15247)\)", re.I)
_TAGS = re.compile(r"\[(?:unixODBC|FreeTDS|SQL Server|Microsoft|ODBC [^\]]*)\]")
_CALL = re.compile(r"\s*\((?:SQL\w+)\)")


def classify(exc: pyodbc.Error) -> Outcome:
    """pyodbc error -> outcome, from the SQLSTATE and the SQL Server error number."""
    state = str(exc.args[0]) if exc.args else ""
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    lowered = text.lower()
    if state == "28000" or "(18456)" in text or "login failed" in lowered:
        return Outcome.AUTH_FAILED
    if state in ("HYT00", "HYT01") or "timeout expired" in lowered or "timed out" in lowered:
        return Outcome.TIMEOUT
    if state == "IM002" or "can't open lib" in lowered:
        return Outcome.NOT_CONFIGURED  # the ODBC driver is not installed/registered
    if state.startswith("08"):
        return Outcome.CONNECTION_ERROR
    if state.startswith("42") and _PERMISSION.search(text):
        return Outcome.PERMISSION_DENIED
    return Outcome.ERROR


def error_text(exc: pyodbc.Error, creds: dict[str, str], connstr: str) -> str:
    """Readable, bounded, credential-free: ``SQLSTATE: message (number)``."""
    state = str(exc.args[0]) if exc.args else ""
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    text = _CALL.sub("", _TAGS.sub("", text))
    text = re.sub(r"\[[0-9A-Z]{5}\]\s*", "", text).strip()
    if connstr:
        text = text.replace(connstr, "***")
    for key, value in creds.items():
        # Only secrets are masked: the login name is what an operator needs to see.
        if key != "username" and value and len(value) > 3:
            text = text.replace(value, "***")
    text = re.sub(r"(?i)\bPWD=[^;]*", "PWD=***", text)
    return f"{state}: {text}"[:300] if state else text[:300]
