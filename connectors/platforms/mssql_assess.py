"""From AG DMV rows to an ``Observation``: roles, markers, estimated data loss, replication.

Pure functions over the rows ``connectors.platforms.mssql`` read (no I/O), so the rules can be
read in one place:

- role of a side: ``role_desc`` of its local row in ``sys.dm_hadr_availability_replica_states``
  (PRIMARY -> primary, SECONDARY -> standby, RESOLVING -> other);
- markers: the primary's ``last_hardened_lsn`` (its own row) and the DR replica's
  ``last_redone_lsn`` (its own row; the primary's row for it while it is connected but
  unreachable from here), for the reported database;
- lag_seconds: estimated data loss, Microsoft's method: on the primary, ``last_commit_time``
  of its own database row minus ``last_commit_time`` of the secondary's row (both stamped by
  the primary, so one clock); the worst database counts;
- lag_bytes: ``(log_send_queue_size + redo_queue_size) * 1024`` over the secondary's rows
  (both KB): log not yet sent plus log received but not yet redone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.contract import Observation, Outcome, Replication, Role, SideObservation

ROLES = {"PRIMARY": Role.PRIMARY, "SECONDARY": Role.STANDBY, "RESOLVING": Role.OTHER}
FLOWING = ("SYNCHRONIZED", "SYNCHRONIZING")
METHOD = (
    "estimated data loss = primary last_commit_time - secondary last_commit_time "
    "(sys.dm_hadr_database_replica_states on the primary); lag_bytes = "
    "(log_send_queue_size + redo_queue_size) * 1024"
)


@dataclass
class Side:
    obs: SideObservation
    configured_replica: str = ""
    server: dict[str, Any] = field(default_factory=dict)
    replicas: list[dict[str, Any]] = field(default_factory=list)
    databases: list[dict[str, Any]] = field(default_factory=list)
    database: str | None = None  # the availability database reported
    heartbeat: datetime | None = None
    heartbeat_error: str = ""

    @classmethod
    def new(cls, site: str, endpoint: str, configured_replica: str) -> Side:
        return cls(SideObservation(site=site, endpoint=endpoint), configured_replica)

    @property
    def local(self) -> dict[str, Any] | None:
        return next((r for r in self.replicas if r.get("is_local")), None)

    @property
    def name(self) -> str:
        local = self.local
        return (
            (local or {}).get("replica_server_name")
            or self.configured_replica
            or (self.server.get("server_name") or self.obs.endpoint)
        )

    def local_db(self, name: str | None) -> dict[str, Any] | None:
        return next(
            (d for d in self.databases if d.get("is_local") and d.get("database_name") == name),
            None,
        )


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def lsn(value: Any) -> str | None:
    return None if value is None else str(int(value))


def pick_database(conn: dict[str, Any], names: list[str]) -> str | None:
    """The configured ``database`` when it is in the AG, else the first AG database by name."""
    wanted = str(conn.get("database") or "")
    by_lower = {n.lower(): n for n in names}
    return by_lower.get(wanted.lower()) or (sorted(names)[0] if names else None)


def describe(side: Side, conn: dict[str, Any]) -> None:
    """Role, health, marker and details of one side from its own rows."""
    obs, server = side.obs, side.server
    ag = conn.get("availability_group")
    server_name = server.get("server_name")
    if not side.replicas:
        obs.outcome = Outcome.ERROR
        obs.error = (
            f"{obs.endpoint}: availability group {ag!r} not found on {server_name} "
            f"(IsHadrEnabled={server.get('is_hadr_enabled')}; the login needs VIEW ANY "
            "DEFINITION to see it)"
        )
        return
    local = side.local
    if local is None:
        obs.outcome = Outcome.ERROR
        obs.error = f"{obs.endpoint}: {server_name} hosts no replica of {ag!r}"
        return
    name = local.get("replica_server_name") or ""
    expected = side.configured_replica
    if expected and expected.lower() != name.lower():
        obs.outcome = Outcome.ERROR
        obs.error = f"{obs.endpoint}: replica is {name!r}, expected {expected!r}"
    obs.role = ROLES.get(str(local.get("role_desc") or ""), Role.UNKNOWN)
    names = sorted({d["database_name"] for d in side.databases if d.get("database_name")})
    side.database = pick_database(conn, names)
    db = side.local_db(side.database) or {}
    column = "last_hardened_lsn" if obs.role == Role.PRIMARY else "last_redone_lsn"
    obs.marker = lsn(db.get(column))
    local_dbs = [d for d in side.databases if d.get("is_local")]
    obs.healthy = local.get("synchronization_health_desc") == "HEALTHY" and all(
        d.get("synchronization_health_desc") == "HEALTHY" for d in local_dbs
    )
    obs.details = {
        "server_name": server_name,
        "product_version": server.get("product_version"),
        "hadr_enabled": server.get("is_hadr_enabled"),
        "availability_group": ag,
        "replica": name,
        "role": local.get("role_desc"),
        "operational_state": local.get("operational_state_desc"),
        "connected_state": local.get("connected_state_desc"),
        "synchronization_health": local.get("synchronization_health_desc"),
        "availability_mode": local.get("availability_mode_desc"),
        "failover_mode": local.get("failover_mode_desc"),
        "readable_secondary": local.get("secondary_role_allow_connections_desc"),
        "database": side.database,
        "databases": {
            d["database_name"]: jsonable(
                {
                    "synchronization_state": d.get("synchronization_state_desc"),
                    "synchronization_health": d.get("synchronization_health_desc"),
                    "is_suspended": d.get("is_suspended"),
                    "suspend_reason": d.get("suspend_reason_desc"),
                    "last_hardened_lsn": lsn(d.get("last_hardened_lsn")),
                    "last_redone_lsn": lsn(d.get("last_redone_lsn")),
                    "last_commit_time": d.get("last_commit_time"),
                    "log_send_queue_kb": d.get("log_send_queue_size"),
                    "redo_queue_kb": d.get("redo_queue_size"),
                }
            )
            for d in local_dbs
        },
    }


def assemble(observed_at: datetime, conn: dict[str, Any], primary: Side, dr: Side) -> Observation:
    obs = Observation(observed_at=observed_at, primary=primary.obs, dr=dr.obs)
    obs.raw = {
        s.obs.site: jsonable({"server": s.server, "replicas": s.replicas, "databases": s.databases})
        for s in (primary, dr)
        if s.server or s.replicas
    }
    seen = [s for s in (primary, dr) if s.obs.reachable and s.local is not None]
    primaries = [s for s in seen if s.obs.role == Role.PRIMARY]
    current = primaries[0] if len(primaries) == 1 else None
    replica = (dr if current is primary else primary) if current else None
    replica_name = _replica_name(current, replica) if current and replica else None
    view_row = _row_for(current.replicas, replica_name) if current else None
    if current is not None:
        _notes_from_view(obs, current)
        _estimate(obs, current, replica_name)
    if replica is not None:
        # Both markers from the primary's view (one instant) while the replica is connected, so
        # that they compare; else the replica's own last_redone_lsn when it can be reached.
        connected = (view_row or {}).get("connected_state_desc") == "CONNECTED"
        remote = _db_row(current, replica_name, current.database) if current else None
        from_view = lsn((remote or {}).get("last_redone_lsn")) if connected else None
        own = replica.obs.marker if replica.obs.reachable else None
        obs.dr_marker = from_view or own
    obs.marker_available = bool(obs.primary_marker and obs.dr_marker)
    if dr.heartbeat is not None:
        obs.heartbeat_at = dr.heartbeat
    elif dr.heartbeat_error:
        obs.notes.append(f"heartbeat not readable on the DR replica: {dr.heartbeat_error}")
    obs.replication = _replication(obs, primary, dr, seen, primaries, replica, view_row)
    return obs


def _replica_name(current: Side, replica: Side) -> str | None:
    """The other replica's name: its own word, the configured name, else the only remote row."""
    if replica.local is not None:
        return replica.name
    if replica.configured_replica:
        return replica.configured_replica
    remote = [r for r in current.replicas if not r.get("is_local")]
    return remote[0].get("replica_server_name") if len(remote) == 1 else None


def _row_for(rows: list[dict[str, Any]], name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    wanted = name.lower()
    return next((r for r in rows if str(r.get("replica_server_name", "")).lower() == wanted), None)


def _db_row(side: Side, replica: str | None, database: str | None) -> dict[str, Any] | None:
    rows = [d for d in side.databases if d.get("database_name") == database]
    return _row_for(rows, replica)


def _notes_from_view(obs: Observation, current: Side) -> None:
    for row in current.replicas:
        if row.get("is_local") or row.get("connected_state_desc") is None:
            continue
        connected = row.get("connected_state_desc")
        health = row.get("synchronization_health_desc")
        if connected != "CONNECTED" or health != "HEALTHY":
            error = row.get("last_connect_error_description") or ""
            obs.notes.append(
                f"{row.get('replica_server_name')} is {connected}, {health} as seen from "
                f"{current.name}" + (f": {error}" if error else "")
            )


def _estimate(obs: Observation, current: Side, replica_name: str | None) -> None:
    """Markers and estimated data loss from the primary's view (one clock, one instant)."""
    obs.primary_marker = current.obs.marker
    per_db: dict[str, dict[str, Any]] = {}
    lags: list[float] = []
    queued_kb = 0
    found = False
    for mine in (d for d in current.databases if d.get("is_local")):
        name = mine.get("database_name")
        theirs = _db_row(current, replica_name, name)
        if theirs is None or theirs is mine:
            continue
        found = True
        p_time, r_time = mine.get("last_commit_time"), theirs.get("last_commit_time")
        lag = None
        if isinstance(p_time, datetime) and isinstance(r_time, datetime):
            lag = max(0.0, (p_time - r_time).total_seconds())
            lags.append(lag)
        send_kb, redo_kb = theirs.get("log_send_queue_size"), theirs.get("redo_queue_size")
        queued_kb += int(send_kb or 0) + int(redo_kb or 0)
        per_db[str(name)] = {
            "lag_seconds": lag,
            "log_send_queue_kb": send_kb,
            "redo_queue_kb": redo_kb,
            "secondary_lag_seconds": theirs.get("secondary_lag_seconds"),
        }
    if lags:
        obs.lag_seconds = max(lags)
    if found:
        obs.lag_bytes = queued_kb * 1024
    obs.raw["estimated_data_loss"] = {
        "method": METHOD,
        "seen_from": current.name,
        "replica": replica_name,
        "database": current.database,
        "per_database": per_db,
    }


def _replication(
    obs: Observation,
    primary: Side,
    dr: Side,
    seen: list[Side],
    primaries: list[Side],
    replica: Side | None,
    view_row: dict[str, Any] | None,
) -> Replication:
    if len(primaries) > 1:
        obs.notes.append(f"more than one PRIMARY: {', '.join(s.name for s in primaries)}")
        return Replication.BROKEN
    if not primaries:
        lost = [
            s
            for s in seen
            if s.obs.role != Role.STANDBY
            or (s.local or {}).get("connected_state_desc") == "DISCONNECTED"
        ]
        if seen and (len(seen) == 2 or lost):
            # A definite finding even with one side unreachable: the replica we can see says
            # it has lost its primary (RESOLVING), so nothing replicates.
            states = ", ".join(f"{s.name} is {(s.local or {}).get('role_desc')}" for s in seen)
            obs.notes.append(f"no replica of the availability group is PRIMARY: {states}")
            return Replication.BROKEN
        return Replication.UNKNOWN
    if not (primary.obs.reachable and dr.obs.reachable) or replica is None:
        return Replication.UNKNOWN
    local = replica.local or {}
    if replica.obs.role != Role.STANDBY:
        obs.notes.append(f"{replica.name} is {local.get('role_desc')}, not SECONDARY")
        return Replication.STOPPED
    dbs = [d for d in replica.databases if d.get("is_local")]
    suspended = [d for d in dbs if d.get("is_suspended")]
    if suspended:
        reasons = ", ".join(
            f"{d.get('database_name')} ({d.get('suspend_reason_desc')})" for d in suspended
        )
        obs.notes.append(f"data movement suspended on {replica.name}: {reasons}")
        return Replication.PAUSED
    links = {(view_row or {}).get("connected_state_desc"), local.get("connected_state_desc")}
    if "DISCONNECTED" in links:
        obs.notes.append(f"{replica.name} is DISCONNECTED from the primary")
        return Replication.STOPPED
    stopped = [d for d in dbs if d.get("synchronization_state_desc") not in FLOWING]
    if stopped:
        states = ", ".join(
            f"{d.get('database_name')} {d.get('synchronization_state_desc')}" for d in stopped
        )
        obs.notes.append(f"not synchronizing on {replica.name}: {states}")
        return Replication.STOPPED
    if not replica.obs.healthy:
        obs.notes.append(
            f"{replica.name} is moving data but its synchronization health is "
            f"{local.get('synchronization_health_desc')}"
        )
    return Replication.STREAMING
