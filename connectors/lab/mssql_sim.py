"""A SQL Server Always On availability group on loopback, for the lab and tests.

No SQL Server package exists here, so each replica is a scripted TDS server
(``connectors.lab.mssql_tds``, on pysqlbridge): pyodbc through unixODBC + FreeTDS logs in with
SQL authentication and runs real T-SQL against it. Queries are answered by pysqlbridge's SQL
engine over tables shaped like SQL Server's AG catalog views and DMVs
(``connectors.lab.mssql_sim_rows``), built from one snapshot of the shared AG state per batch.

Topology: replica "SQLPRI" at the primary site (PRIMARY) and "SQLDR" at the DR site
(SECONDARY), synchronous commit, manual failover, readable secondary. The primary writes all the
time (log and commit times follow the wall clock); the secondary hardens and redoes at once
unless a fault freezes it. Faults act on roles: ``lag``/``pause``/``standby_down``/``timeout``
on the current secondary, ``primary_down`` on the current primary.

Logins: ``bc_monitor`` (VIEW SERVER STATE, VIEW ANY DEFINITION) and ``bc_execute`` (also ALTER
ANY AVAILABILITY GROUP), random passwords kept in ``state_path``. ``ALTER AVAILABILITY GROUP
[bc-ag] FAILOVER`` / ``FORCE_FAILOVER_ALLOW_DATA_LOSS`` / ``MODIFY REPLICA ON N'..' WITH
(AVAILABILITY_MODE = ..)`` and ``ALTER DATABASE [db] SET HADR SUSPEND|RESUME`` change the state
as SQL Server would (a new primary's ``recovery_lsn`` is where it took over; with
``resync_seconds`` a secondary stays SYNCHRONIZING that long after a planned failover or a
resume); every batch received is recorded.
Not modelled: storage, real transactions, WSFC quorum, automatic failover, seeding, listeners.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from pysqlbridge.certificate import self_signed
from pysqlbridge.source import Table
from pysqlbridge.tds.result import Column, Integer, Query, QueryError, QueryResult

from connectors.lab import mssql_sim_rows as rows
from connectors.lab.mssql_sim_state import AgState, Replica
from connectors.lab.mssql_tds import AgCatalog, ReplicaServer, serve_replica

log = logging.getLogger(__name__)

FAULTS = ("lag", "pause", "standby_down", "primary_down", "timeout", "split_brain", "heal")
MONITOR_USER, EXECUTE_USER = "bc_monitor", "bc_execute"
VIEW_SERVER_STATE, VIEW_ANY_DEFINITION = "VIEW SERVER STATE", "VIEW ANY DEFINITION"
ALTER_ANY_AG = "ALTER ANY AVAILABILITY GROUP"
MONITOR_PERMISSIONS = frozenset({VIEW_SERVER_STATE, VIEW_ANY_DEFINITION})
HEARTBEAT_TABLE = "bc_heartbeat"  # dbo.bc_heartbeat(id int, ts datetime), "written" every second

_NAME = r"(\[(?:[^\]]|\]\])+\]|\"[^\"]+\"|[A-Za-z_][\w@#$]*)"
_ALTER_AG = re.compile(
    rf"alter availability group\s+{_NAME}\s+(failover|force_failover_allow_data_loss)", re.I
)
_MODIFY_MODE = re.compile(
    rf"alter availability group\s+{_NAME}\s+modify replica on\s+N?'((?:[^']|'')+)'\s+with\s*"
    r"\(\s*availability_mode\s*=\s*(synchronous_commit|asynchronous_commit)\s*\)",
    re.I,
)
_ALTER_DB_HADR = re.compile(rf"alter database\s+{_NAME}\s+set hadr\s+(suspend|resume)", re.I)


def _unquote(name: str) -> str:
    if name.startswith("["):
        return name[1:-1].replace("]]", "]")
    return name.strip('"')


class _Logins:
    """What pysqlbridge's Connection asks (``admits``/``configured``), plus permissions."""

    configured = True  # pysqlbridge admits nobody when no login is configured

    def __init__(self) -> None:
        self._logins: dict[str, tuple[str, frozenset[str]]] = {}

    def add(self, user: str, password: str, permissions: frozenset[str]) -> None:
        self._logins[user.lower()] = (password, permissions)

    def admits(self, user: str, password: str) -> bool:
        found = self._logins.get((user or "").lower())
        return found is not None and secrets.compare_digest(found[0], password)

    def permissions(self, user: str) -> frozenset[str]:
        return self._logins.get((user or "").lower(), ("", frozenset()))[1]


class MssqlAgSimulator:
    platform = "mssql"
    faults = FAULTS

    def __init__(
        self,
        state_path: Path | None = None,
        ag_name: str = "bc-ag",
        databases: tuple[str, ...] = ("appdb",),
        resync_seconds: float = 0.0,
    ) -> None:
        if not databases:
            raise ValueError("an availability group needs at least one database")
        self.state_path = Path(state_path) if state_path else None
        self.ag_name = ag_name
        self.database_names = tuple(databases)
        self.resync_seconds = resync_seconds
        self._lock = threading.RLock()
        self.state: AgState | None = None
        self._servers: dict[str, ReplicaServer] = {}
        self._catalogs: dict[str, AgCatalog] = {}
        self._logins = _Logins()
        self._credentials: dict[str, dict[str, str]] = {}
        self._statements: deque[dict[str, Any]] = deque(maxlen=20000)
        self._faults: set[str] = set()
        self._certificate: Any = None
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start both replicas (on the ports used last time when free); say how to reach them."""
        saved = self._load_state()
        ids = saved.get("ids") or {
            "group_id": _guid(),
            "created": time.time(),
            "replicas": {"SQLPRI": _guid(), "SQLDR": _guid()},
        }
        known = ids.get("databases") or {}
        ids["databases"] = {name: known.get(name) or _guid() for name in self.database_names}
        self._credentials = saved.get("credentials") or {
            user: {"username": user, "password": secrets.token_urlsafe(18)}
            for user in (MONITOR_USER, EXECUTE_USER)
        }
        monitor, execute = (self._credentials[u]["password"] for u in (MONITOR_USER, EXECUTE_USER))
        self._logins.add(MONITOR_USER, monitor, MONITOR_PERMISSIONS)
        self._logins.add(EXECUTE_USER, execute, MONITOR_PERMISSIONS | {ALTER_ANY_AG})
        self.state = AgState(
            self.ag_name,
            self.database_names,
            ids,
            saved.get("replicas") or {},
            resync_seconds=self.resync_seconds,
        )
        self._faults = set(saved.get("faults") or [])
        self._certificate = self_signed("localhost")  # one RSA key for both replicas (~60 ms)
        self._running = True
        for replica in self.state.replicas:
            self._catalogs[replica.name] = AgCatalog()
            if replica.up:
                self._serve(replica)
        self._save_state()
        return self.connection_info()

    def _serve(self, replica: Replica) -> None:
        server = serve_replica(
            replica.port,
            name=replica.name,
            certificate=self._certificate,
            logins=self._logins,
            answer=self._answer,
            is_hung=lambda r=replica: r.hung_since is not None,
        )
        replica.port = server.port
        self._servers[replica.name] = server

    def connection_info(self) -> dict[str, Any]:
        by_site = {r.site: r for r in self._state().replicas}
        return {
            "connection": {
                "primary_server": "127.0.0.1",
                "primary_port": by_site["primary"].port,
                "dr_server": "127.0.0.1",
                "dr_port": by_site["dr"].port,
                "availability_group": self.ag_name,
                "database": self.database_names[0],
                "driver": "FreeTDS",
                "primary_replica": by_site["primary"].name,
                "dr_replica": by_site["dr"].name,
            },
            "credentials": {
                "monitor": dict(self._credentials[MONITOR_USER]),
                "execute": dict(self._credentials[EXECUTE_USER]),
            },
        }

    def stop(self) -> None:
        with self._lock:
            self._running = False
            servers = list(self._servers.values())
            self._servers.clear()
        _stop_all(servers)

    def add_login(self, username: str, password: str, permissions: tuple[str, ...] = ()) -> None:
        """Create a login (tests use one without VIEW SERVER STATE to see error 300/297)."""
        self._logins.add(username, password, frozenset(permissions))

    def received_statements(self, replica: str | None = None) -> list[str]:
        """Every SQL text received, oldest first; only those sent to ``replica`` when given."""
        with self._lock:
            items = list(self._statements)
        return [s["sql"] for s in items if replica is None or s["replica"] == replica]

    def statement_log(self) -> list[dict[str, Any]]:
        """Every batch received: {at, replica, login, sql}."""
        with self._lock:
            return [dict(s) for s in self._statements]

    def _state(self) -> AgState:
        if self.state is None:
            raise RuntimeError("the simulator is not started")
        return self.state

    # -- faults ------------------------------------------------------------------------------

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        state = self._state()
        with self._lock:
            to_stop = [self._servers.pop(n) for n in state.inject(fault) if n in self._servers]
            if fault == "heal":
                self._faults.clear()
            else:
                self._faults.add(fault)
        _stop_all(to_stop)
        with self._lock:
            for replica in state.replicas:
                if replica.up and replica.name not in self._servers and self._running:
                    self._serve(replica)
        self._save_state()

    def snapshot(self) -> rows.AgSnapshot:
        return self._state().snapshot()

    def status(self) -> dict[str, Any]:
        state = self._state()
        snap = state.snapshot()
        replicas = []
        for view in snap.replicas:
            replica = state.get(view.name)
            source_end = view.source_end_t or view.end_t
            redo_bytes = rows.position(snap, view.received_t) - rows.position(snap, view.redone_t)
            replicas.append(
                {
                    "name": view.name,
                    "site": view.site,
                    "role": view.role,
                    "port": replica.port,
                    "serving": replica.up and replica.hung_since is None,
                    "connected": view.connected,
                    "synchronization_state": rows.database_sync(view)[0],
                    "suspended": view.suspended,
                    "lag_seconds": round(max(0.0, source_end - view.redone_t), 3),
                    "redo_queue_kb": redo_bytes // 1024,
                }
            )
        return {
            "platform": self.platform,
            "running": self._running,
            "availability_group": self.ag_name,
            "primary": [r["name"] for r in replicas if r["role"] == "PRIMARY"],
            "faults": sorted(self._faults),
            "replicas": replicas,
            "statements_received": len(self._statements),
        }

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, replica: str, query: Query) -> QueryResult:
        """Called by the replica's TDS server for every batch (on that session's thread)."""
        sql = query.sql or ""
        login = str(query.session.get("login") or "")
        with self._lock:
            self._statements.append(
                {"at": time.time(), "replica": replica, "login": login, "sql": sql}
            )
        text = " ".join(sql.split()).strip().rstrip(";").strip()
        lowered = text.lower()
        permissions = self._logins.permissions(login)
        if lowered.startswith("alter availability group"):
            return self._alter_ag(replica, permissions, text)
        if lowered.startswith("alter database") and " set hadr " in lowered:
            return self._alter_database(replica, permissions, text)
        if "dm_hadr_" in lowered and VIEW_SERVER_STATE not in permissions:
            # Real servers send 300 then 297; FreeTDS reports the last one.
            raise QueryError(
                "VIEW SERVER STATE permission was denied on object 'server', database 'master'.",
                number=300,
                severity=14,
                following=(QueryError(_NO_PERMISSION, number=297),),
            )
        snapshot = self._state().snapshot()
        tables = rows.tables_for(snapshot, replica, VIEW_ANY_DEFINITION in permissions)
        tables[f"dbo.{HEARTBEAT_TABLE}"] = _heartbeat(snapshot, replica)
        with self._catalogs[replica].serving(tables):
            return self._catalogs[replica].answer(query)

    def _alter_ag(self, replica: str, permissions: frozenset[str], text: str) -> QueryResult:
        match = _ALTER_AG.fullmatch(text)
        modify = _MODIFY_MODE.fullmatch(text) if match is None else None
        if match is None and modify is None:
            raise QueryError(
                "The lab double models only ALTER AVAILABILITY GROUP [name] FAILOVER, "
                "FORCE_FAILOVER_ALLOW_DATA_LOSS and MODIFY REPLICA ON N'replica' WITH "
                "(AVAILABILITY_MODE = ...)."
            )
        name = _unquote((match or modify)[1])  # type: ignore[index]
        if name.lower() != self.ag_name.lower() or ALTER_ANY_AG not in permissions:
            raise QueryError(
                f"Cannot alter the availability group '{name}', because it does not exist or "
                "you do not have permission.",
                number=15151,
            )
        if modify is not None:
            mode = modify[3].upper()
            self._state().modify_availability_mode(replica, modify[2].replace("''", "'"), mode)
            self._save_state()
            return QueryResult(columns=[], rows=[])
        assert match is not None
        forced = match[2].lower() != "failover"
        self._state().failover(replica, forced)
        with self._lock:
            self._faults.add("forced_failover" if forced else "failover")
        self._save_state()
        return QueryResult(columns=[], rows=[])

    def _alter_database(self, replica: str, permissions: frozenset[str], text: str) -> QueryResult:
        match = _ALTER_DB_HADR.fullmatch(text)
        if match is None:
            raise QueryError(
                "The lab double models only ALTER DATABASE [db] SET HADR SUSPEND|RESUME."
            )
        name = _unquote(match[1])
        if name.lower() not in {d.lower() for d in self.database_names}:
            raise QueryError(
                f"Database '{name}' does not exist. Make sure that the name is entered correctly.",
                number=911,
            )
        if ALTER_ANY_AG not in permissions:
            raise QueryError(
                f"User does not have permission to alter database '{name}', the database does "
                "not exist, or the database is not in a state that allows access checks.",
                number=5011,
                severity=14,
            )
        self._state().set_hadr(replica, suspend=match[2].lower() == "suspend")
        self._save_state()
        return QueryResult(columns=[], rows=[])

    # -- persistence -------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        if self.state_path and self.state_path.exists():
            try:
                return json.loads(self.state_path.read_text())
            except (OSError, ValueError):
                log.warning("ignoring unreadable simulator state %s", self.state_path)
        return {}

    def _save_state(self) -> None:
        if not self.state_path or self.state is None:
            return
        with self._lock, self.state.lock:  # the order inject() takes them in
            data = {
                "availability_group": self.ag_name,
                "ids": self.state.ids,
                "credentials": self._credentials,
                "replicas": {r.name: r.saved() for r in self.state.replicas},
                "faults": sorted(self._faults),
            }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.chmod(0o600)  # it holds the lab passwords
        tmp.replace(self.state_path)


_NO_PERMISSION = "The user does not have permission to perform this action."


def _guid() -> str:
    return str(uuid.uuid4()).upper()


def _heartbeat(snapshot: rows.AgSnapshot, replica: str) -> Table:
    """dbo.bc_heartbeat as ``replica`` holds it: a job on the primary updates ts every second,
    so a secondary shows the last update it has redone."""
    view = snapshot.replica(replica)
    ts = int(view.redone_t) if view else int(snapshot.now)
    return Table(
        HEARTBEAT_TABLE,
        [Column("id", Integer(4)), Column("ts", rows.DATETIME)],
        [[1, rows.at(float(ts))]],
    )


def _stop_all(servers: list[ReplicaServer]) -> None:
    threads = [threading.Thread(target=s.stop, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
