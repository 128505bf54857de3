"""Rows shaped like SQL Server's availability-group catalog views and DMVs, for the lab double.

``connectors.lab.mssql_sim`` keeps the state of a simulated Always On availability group; this
module turns one consistent snapshot of that state into the tables a given replica would show:
``sys.availability_groups``, ``sys.availability_replicas``, ``sys.availability_databases_cluster``,
``sys.dm_hadr_availability_replica_states`` and ``sys.dm_hadr_database_replica_states``. Column
names, order and SQL types follow SQL Server 2016+ (the subset that monitoring and failover
tooling reads); what each replica may see follows the real rules: the primary returns a row for
every replica and every database replica, a secondary (or a RESOLVING replica) only its own.

Log positions follow the wall clock: the primary generates ``LOG_KB_PER_SECOND`` of log, and a
position in bytes becomes an LSN the way SQL Server prints one as numeric(25,0):
``VLF sequence * 10^15 + block offset (512-byte units) * 10^5 + slot``. Times are naive UTC
``datetime`` values (the lab servers run in UTC; real ones report server local time).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pysqlbridge.source import Table
from pysqlbridge.tds.result import (
    Bit,
    Column,
    ColumnType,
    DateTime,
    Integer,
    NVarChar,
    UniqueIdentifier,
)

LOG_KB_PER_SECOND = 64
VLF_BYTES = 8 * 1024 * 1024
FIRST_VLF = 38
SESSION_TIMEOUT_SECONDS = 10  # availability_replicas.session_timeout default


@dataclass(frozen=True)
class Numeric(ColumnType):
    """NUMERICN (0x6C): numeric(p, 0), which pysqlbridge does not ship. LSNs are numeric(25,0).

    Precision 20-28 takes 12 bytes of magnitude plus one sign byte (MS-TDS 2.2.5.5.1.6).
    """

    precision: int = 25

    def type_info(self) -> bytes:
        return bytes([0x6C, 13, self.precision, 0])

    def encode(self, value: object) -> bytes:
        if value is None:
            return b"\x00"
        number = int(value)  # type: ignore[call-overload]
        return bytes([13, 1 if number >= 0 else 0]) + abs(number).to_bytes(12, "little")


TINYINT, INT, BIGINT = Integer(1), Integer(4), Integer(8)
BIT, DATETIME, GUID, LSN = Bit(), DateTime(), UniqueIdentifier(), Numeric(25)


def _nv(chars: int) -> NVarChar:
    return NVarChar(chars)


# (column name, SQL type), in the order SQL Server returns them for SELECT *.
AVAILABILITY_GROUPS = [
    ("group_id", GUID), ("name", _nv(128)), ("resource_id", _nv(40)),
    ("resource_group_id", _nv(40)), ("failure_condition_level", INT),
    ("health_check_timeout", INT), ("automated_backup_preference", TINYINT),
    ("automated_backup_preference_desc", _nv(60)), ("version", Integer(2)),
    ("basic_features", BIT), ("dtc_support", BIT), ("db_failover", BIT),
    ("is_distributed", BIT), ("cluster_type", TINYINT), ("cluster_type_desc", _nv(60)),
    ("required_synchronized_secondaries_to_commit", INT), ("sequence_number", BIGINT),
]  # fmt: skip
AVAILABILITY_REPLICAS = [
    ("replica_id", GUID), ("group_id", GUID), ("replica_metadata_id", INT),
    ("replica_server_name", _nv(256)), ("endpoint_url", _nv(128)),
    ("availability_mode", TINYINT), ("availability_mode_desc", _nv(60)),
    ("failover_mode", TINYINT), ("failover_mode_desc", _nv(60)), ("session_timeout", INT),
    ("primary_role_allow_connections", TINYINT), ("primary_role_allow_connections_desc", _nv(60)),
    ("secondary_role_allow_connections", TINYINT),
    ("secondary_role_allow_connections_desc", _nv(60)), ("create_date", DATETIME),
    ("modify_date", DATETIME), ("backup_priority", INT), ("read_only_routing_url", _nv(256)),
    ("seeding_mode", TINYINT), ("seeding_mode_desc", _nv(60)),
]  # fmt: skip
AVAILABILITY_DATABASES_CLUSTER = [
    ("group_id", GUID), ("group_database_id", GUID), ("database_name", _nv(128)),
    ("truncation_lsn", LSN),
]  # fmt: skip
REPLICA_STATES = [
    ("replica_id", GUID), ("group_id", GUID), ("is_local", BIT), ("role", TINYINT),
    ("role_desc", _nv(60)), ("operational_state", TINYINT), ("operational_state_desc", _nv(60)),
    ("connected_state", TINYINT), ("connected_state_desc", _nv(60)),
    ("recovery_health", TINYINT), ("recovery_health_desc", _nv(60)),
    ("synchronization_health", TINYINT), ("synchronization_health_desc", _nv(60)),
    ("last_connect_error_number", INT), ("last_connect_error_description", _nv(1024)),
    ("last_connect_error_timestamp", DATETIME), ("write_lease_remaining_ticks", BIGINT),
]  # fmt: skip
DATABASE_REPLICA_STATES = [
    ("database_id", INT), ("group_id", GUID), ("replica_id", GUID), ("group_database_id", GUID),
    ("is_local", BIT), ("is_primary_replica", BIT), ("synchronization_state", TINYINT),
    ("synchronization_state_desc", _nv(60)), ("is_commit_participant", BIT),
    ("synchronization_health", TINYINT), ("synchronization_health_desc", _nv(60)),
    ("database_state", TINYINT), ("database_state_desc", _nv(60)), ("is_suspended", BIT),
    ("suspend_reason", TINYINT), ("suspend_reason_desc", _nv(60)), ("recovery_lsn", LSN),
    ("truncation_lsn", LSN), ("last_sent_lsn", LSN), ("last_sent_time", DATETIME),
    ("last_received_lsn", LSN), ("last_received_time", DATETIME), ("last_hardened_lsn", LSN),
    ("last_hardened_time", DATETIME), ("last_redone_lsn", LSN), ("last_redone_time", DATETIME),
    ("log_send_queue_size", BIGINT), ("log_send_rate", BIGINT), ("redo_queue_size", BIGINT),
    ("redo_rate", BIGINT), ("filestream_send_rate", BIGINT), ("end_of_log_lsn", LSN),
    ("last_commit_lsn", LSN), ("last_commit_time", DATETIME), ("low_water_mark_for_ghosts", BIGINT),
    ("secondary_lag_seconds", BIGINT),
]  # fmt: skip

ROLE = {"RESOLVING": 0, "PRIMARY": 1, "SECONDARY": 2}
OPERATIONAL = {"PENDING_FAILOVER": 0, "PENDING": 1, "ONLINE": 2, "OFFLINE": 3, "FAILED": 4}
HEALTH = {"NOT_HEALTHY": 0, "PARTIALLY_HEALTHY": 1, "HEALTHY": 2}
SYNC_STATE = {"NOT SYNCHRONIZING": 0, "SYNCHRONIZING": 1, "SYNCHRONIZED": 2, "REVERTING": 3}
SUSPEND_REASON = {"SUSPEND_FROM_USER": 0, "SUSPEND_FROM_PARTNER": 1, "SUSPEND_FROM_REDO": 2}
AVAILABILITY_MODE = {"ASYNCHRONOUS_COMMIT": 0, "SYNCHRONOUS_COMMIT": 1}
FAILOVER_MODE = {"AUTOMATIC": 0, "MANUAL": 1}


@dataclass
class ReplicaView:
    """One replica at one instant, as the simulator computed it. Times are epoch seconds."""

    name: str
    site: str
    replica_id: str
    metadata_id: int
    role: str  # PRIMARY, SECONDARY or RESOLVING
    availability_mode: str = "SYNCHRONOUS_COMMIT"
    failover_mode: str = "MANUAL"
    connected: bool = True  # to the primary (secondary), or seen connected by the primary
    connect_error: tuple[int, str, float] | None = None  # number, text, when
    suspended: str | None = None  # suspend_reason_desc
    end_t: float = 0.0  # end of this replica's log (primary: last write)
    received_t: float = 0.0
    redone_t: float = 0.0
    source_end_t: float | None = None  # end of the log of the primary it replicates from
    sending: bool = True  # log flows to this secondary
    redoing: bool = True
    # Where this replica's current role began: for a primary, the end of the log it had when it
    # took over (recovery_lsn); for a secondary, the point it resynchronizes from.
    recovery_t: float | None = None
    resyncing: bool = False  # a secondary catching up after a role change or a resume


@dataclass
class Database:
    name: str
    database_id: int
    group_database_id: str


@dataclass
class AgSnapshot:
    ag_name: str
    group_id: str
    created: float
    base_t: float  # where log position 0 is
    now: float
    replicas: list[ReplicaView]
    databases: list[Database]

    def replica(self, name: str) -> ReplicaView | None:
        return next((r for r in self.replicas if r.name.lower() == name.lower()), None)


def at(epoch: float | None) -> datetime.datetime | None:
    """Epoch seconds -> naive UTC datetime, as a DMV returns datetime columns."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).replace(tzinfo=None)


def position(snapshot: AgSnapshot, t: float) -> int:
    """Bytes of log generated by time ``t``."""
    return max(0, int((t - snapshot.base_t) * LOG_KB_PER_SECOND * 1024))


def lsn(pos: int) -> int:
    """A log position in bytes -> LSN as numeric(25,0), e.g. 38000000001234500003."""
    vlf, offset = divmod(pos, VLF_BYTES)
    block, in_block = divmod(offset, 512)
    return (FIRST_VLF + vlf) * 10**15 + block * 10**5 + in_block // 8 + 1


def _table(name: str, spec: list[tuple[str, ColumnType]], rows: list[list[object]]) -> Table:
    return Table(name, [Column(col, kind) for col, kind in spec], rows)


def tables_for(snapshot: AgSnapshot, local_name: str, see_definitions: bool) -> dict[str, Table]:
    """The AG views as ``local_name`` shows them. Without VIEW ANY DEFINITION the catalog views
    (``sys.availability_*``) return no rows, as metadata visibility does on a real server."""
    local = snapshot.replica(local_name)
    assert local is not None
    ag_rows = [
        [snapshot.group_id, snapshot.ag_name, None, None, 3, 30000, 2, "SECONDARY", 1,
         False, False, False, False, 0, "WSFC", 0, 4294967297]
    ]  # fmt: skip
    replica_rows = [_replica_row(snapshot, r) for r in snapshot.replicas]
    db_rows = [
        [snapshot.group_id, db.group_database_id, db.name, lsn(0)] for db in snapshot.databases
    ]
    # A secondary (or RESOLVING) replica only sees itself in the DMVs; the primary sees all.
    visible = snapshot.replicas if local.role == "PRIMARY" else [local]
    state_rows = [_replica_state_row(snapshot, r, r is local, local) for r in visible]
    drs_rows = [
        _database_row(snapshot, db, r, r is local, local)
        for r in visible
        for db in snapshot.databases
    ]
    definitions = {
        "availability_groups": _table("availability_groups", AVAILABILITY_GROUPS, ag_rows),
        "availability_replicas": _table(
            "availability_replicas", AVAILABILITY_REPLICAS, replica_rows
        ),
        "availability_databases_cluster": _table(
            "availability_databases_cluster", AVAILABILITY_DATABASES_CLUSTER, db_rows
        ),
    }
    if not see_definitions:
        definitions = {k: Table(t.name, t.columns, []) for k, t in definitions.items()}
    return {
        **definitions,
        "dm_hadr_availability_replica_states": _table(
            "dm_hadr_availability_replica_states", REPLICA_STATES, state_rows
        ),
        "dm_hadr_database_replica_states": _table(
            "dm_hadr_database_replica_states", DATABASE_REPLICA_STATES, drs_rows
        ),
    }


def _replica_row(snapshot: AgSnapshot, r: ReplicaView) -> list[object]:
    created = at(snapshot.created)
    return [
        r.replica_id, snapshot.group_id, r.metadata_id, r.name, f"TCP://{r.name.lower()}.lab:5022",
        AVAILABILITY_MODE[r.availability_mode], r.availability_mode,
        FAILOVER_MODE[r.failover_mode], r.failover_mode, SESSION_TIMEOUT_SECONDS,
        2, "ALL", 2, "ALL", created, created, 50, None, 1, "AUTOMATIC",
    ]  # fmt: skip


def database_sync(r: ReplicaView) -> tuple[str, str]:
    """(synchronization_state_desc, synchronization_health_desc) of a database on ``r``."""
    if r.role == "PRIMARY":
        return "SYNCHRONIZED" if r.availability_mode == "SYNCHRONOUS_COMMIT" else "SYNCHRONIZING", (
            "HEALTHY"
        )
    if r.suspended or not r.connected or r.role == "RESOLVING":
        return "NOT SYNCHRONIZING", "NOT_HEALTHY"
    if r.resyncing:
        # Catching up after a failover or a resume: a synchronous-commit database that is not
        # SYNCHRONIZED yet is PARTIALLY_HEALTHY (sys.dm_hadr_database_replica_states).
        healthy = r.availability_mode != "SYNCHRONOUS_COMMIT"
        return "SYNCHRONIZING", "HEALTHY" if healthy else "PARTIALLY_HEALTHY"
    if r.availability_mode == "SYNCHRONOUS_COMMIT":
        # Hardening is synchronous; redo may still trail (redo_queue_size) while SYNCHRONIZED.
        return "SYNCHRONIZED", "HEALTHY"
    return "SYNCHRONIZING", "HEALTHY"


def _replica_state_row(
    snapshot: AgSnapshot, r: ReplicaView, is_local: bool, viewer: ReplicaView
) -> list[object]:
    _, health = database_sync(r)
    connected = True if r.role == "PRIMARY" and is_local else r.connected
    if is_local:
        operational = "ONLINE" if r.role != "RESOLVING" else "PENDING"
        recovery: tuple[int | None, str | None] = (1, "ONLINE")
    else:  # operational and recovery state are only known for the local replica
        operational, recovery = None, (None, None)
    err = r.connect_error
    return [
        r.replica_id, snapshot.group_id, is_local, ROLE[r.role], r.role,
        OPERATIONAL.get(operational) if operational else None, operational,
        1 if connected else 0, "CONNECTED" if connected else "DISCONNECTED",
        recovery[0], recovery[1], HEALTH[health], health,
        err[0] if err else 0, err[1] if err else "", at(err[2]) if err else None,
        299500 if r.role == "PRIMARY" and is_local else None,
    ]  # fmt: skip


def _database_row(
    snapshot: AgSnapshot, db: Database, r: ReplicaView, is_local: bool, viewer: ReplicaView
) -> list[object]:
    state, health = database_sync(r)
    gid, rid = snapshot.group_id, r.replica_id
    suspend = r.suspended if r.role != "PRIMARY" else None
    recovery = lsn(position(snapshot, r.recovery_t)) if r.recovery_t is not None else lsn(0)
    common_head = [db.database_id, gid, rid, db.group_database_id, is_local, r.role == "PRIMARY",
                   SYNC_STATE[state], state, r.availability_mode == "SYNCHRONOUS_COMMIT",
                   HEALTH[health], health, 0 if is_local else None,
                   "ONLINE" if is_local else None, bool(suspend),
                   SUSPEND_REASON.get(suspend) if suspend else None, suspend]  # fmt: skip
    if r.role == "PRIMARY":
        end = lsn(position(snapshot, r.end_t))
        # The primary's own row leaves the secondary-only columns NULL, as SQL Server does.
        return [*common_head, recovery, lsn(0),
                None, None, None, None, end, at(r.end_t), None, None,
                None, None, None, None, None, end, end, at(r.end_t), 0, None]  # fmt: skip
    source_end = max(r.source_end_t or r.received_t, r.received_t)
    received, redone = position(snapshot, r.received_t), position(snapshot, r.redone_t)
    send_queue = (position(snapshot, source_end) - received) // 1024
    # secondary_lag_seconds is only filled in on the primary (NULL elsewhere, as documented).
    lag = int(max(0.0, source_end - r.redone_t)) if viewer.role == "PRIMARY" else None
    return [
        *common_head, recovery, lsn(0),
        lsn(received), at(r.received_t), lsn(received), at(r.received_t),
        lsn(received), at(r.received_t), lsn(redone), at(r.redone_t),
        send_queue, LOG_KB_PER_SECOND if r.sending else 0,
        (received - redone) // 1024, LOG_KB_PER_SECOND if r.redoing else 0, 0,
        lsn(received), lsn(redone), at(r.redone_t), 0, lag,
    ]  # fmt: skip
