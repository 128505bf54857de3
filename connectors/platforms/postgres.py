"""PostgreSQL streaming replication: read-only observation of a primary and its DR standby.

Each configured node (``primary_host:primary_port`` at the primary site, ``dr_host:dr_port`` at
the DR site) is reached on its own connection, in parallel, with psycopg 3: a failure on one side
never hides the other, and a side that hangs costs at most about ``timeout_seconds``. Which node
is primary *now* comes from ``pg_is_in_recovery()`` (after a switchover the DR node is the
primary). The queries are in ``postgres_read``; what they mean and how lag is computed is in
docs/connectors/postgres.md.

Executions (switchover, failback, failover, drill) are planned in ``postgres_plan``: SQL over
psycopg for what SQL can do (fence, pg_promote, checks), configured host actions
(``postgres_actions``) for what it cannot (stopping a server, pg_rewind, restarting as a standby).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any

from connectors.contract import (
    Capability,
    Connector,
    Observation,
    Outcome,
    PlanStep,
    Replication,
    SideObservation,
    Support,
    Target,
)
from connectors.platforms import postgres_actions, postgres_plan
from connectors.platforms.postgres_read import NodeRead, jsonable, lsn_int, read_node
from inventory.connection_settings import with_defaults

_FLOWING = ("streaming", "catchup")


class PostgresConnector(Connector):
    platform = "postgres"

    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        conn = dict(target.connection) if target is not None else {}
        # Promotion, fencing and the checks are SQL; putting the old primary back as a standby
        # (pg_rewind, standby.signal, restart) happens on its host: the 'rejoin' host action.
        problem = postgres_actions.problem(conn, "rejoin")
        needs_rejoin = (
            Capability(Support.CONDITIONAL, f"needs the 'rejoin' host action: {problem}")
            if problem
            else Capability(Support.YES)
        )
        return {
            "monitor": Capability(Support.YES),
            "replication_marker": Capability(Support.YES),
            "heartbeat": (
                Capability(Support.YES)
                if target is not None and target.heartbeat is not None
                else Capability(Support.CONDITIONAL, "needs a heartbeat table configured")
            ),
            "switchover": needs_rejoin,
            "failover": Capability(Support.YES),
            "failback": needs_rejoin,
            "drill": Capability(Support.YES),
        }

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        """No I/O and no credentials here: the steps fetch ``execute`` when they run."""
        return postgres_plan.build(kind, target, self.observe)

    def observe(self, target: Target) -> Observation:
        observed_at = datetime.now(UTC)
        conn = with_defaults(self.platform, dict(target.connection))
        # A secret that cannot be resolved is not a target problem: SecretError propagates and
        # the collection records it as such.
        creds = {k: str(v) for k, v in dict(target.credentials("monitor") or {}).items()}
        timeout = float(target.timeout_seconds)
        endpoints = {
            "primary": (conn.get("primary_host") or "", int(conn.get("primary_port") or 5432)),
            "dr": (conn.get("dr_host") or "", int(conn.get("dr_port") or 5432)),
        }
        # Not a `with` block: leaving it would wait for a thread stuck on a dead socket.
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pg-observe")
        try:
            futures = {
                site: pool.submit(
                    read_node, site, host, port, conn, creds, timeout, target.heartbeat
                )
                for site, (host, port) in endpoints.items()
            }
            # connect_timeout and statement_timeout bound each step server-side or in psycopg;
            # this bounds the whole side in case something still hangs (e.g. a dead link
            # mid-query, where no server is left to cancel the statement).
            budget = 2 * max(2.0, timeout) + 1
            deadline = time.monotonic() + budget
            reads = {}
            for site, future in futures.items():
                try:
                    reads[site] = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    host, port = endpoints[site]
                    side = SideObservation(site=site, endpoint=f"{host}:{port}")
                    side.outcome = Outcome.TIMEOUT
                    side.error = f"{host}:{port}: no answer within {budget:g} s"
                    reads[site] = NodeRead(side)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return assemble(observed_at, conn, reads["primary"], reads["dr"])


def assemble(
    observed_at: datetime, conn: dict[str, Any], primary: NodeRead, dr: NodeRead
) -> Observation:
    """Both sides -> one observation: markers, lag, replication state, notes."""
    obs = Observation(observed_at=observed_at, primary=primary.obs, dr=dr.obs)
    obs.notes.extend(primary.notes + dr.notes)
    obs.raw = {r.obs.site: r.raw for r in (primary, dr) if r.raw}
    writers = [r for r in (primary, dr) if r.reachable and r.in_recovery is False]
    current = writers[0] if writers else None
    if current is primary:
        replica = dr
    elif current is dr:
        replica = primary
    else:  # no primary seen: the replicating side is whichever node is in recovery
        replica = next((r for r in (dr, primary) if r.reachable and r.in_recovery), dr)
    replica_ok = replica.reachable and bool(replica.in_recovery)

    obs.primary_marker = current.current_lsn if current else None
    obs.dr_marker = replica.replay_lsn if replica_ok else None
    obs.marker_available = bool(obs.primary_marker and obs.dr_marker)
    if obs.marker_available:
        obs.lag_bytes = max(0, (lsn_int(obs.primary_marker) or 0) - (lsn_int(obs.dr_marker) or 0))
    slot_name = conn.get("slot_name") or ""
    slot = (
        next((s for s in current.slots if s.get("slot_name") == slot_name), None)
        if current
        else None
    )
    row, ambiguous = _standby_row(current, replica, slot) if current else (None, False)
    if replica_ok:
        obs.heartbeat_at = replica.heartbeat
        obs.lag_seconds = _lag_seconds(obs, current, replica, row)
    obs.replication = _replication(
        obs, slot_name, slot, row, ambiguous, primary, dr, writers, replica
    )
    obs.raw["computed"] = jsonable(
        {
            "current_primary": current.obs.site if current else None,
            "replicating_side": replica.obs.site if replica_ok else None,
            "lag_bytes": obs.lag_bytes,
            "lag_seconds": obs.lag_seconds,
        }
    )
    return obs


def _lag_seconds(
    obs: Observation, current: NodeRead | None, replica: NodeRead, row: dict[str, Any] | None
) -> float | None:
    """Seconds the replica's replayed state is behind the primary; 0 when it has replayed
    everything, also on an idle primary. See docs/connectors/postgres.md, "Lag"."""
    if current is not None and obs.lag_bytes == 0:
        return 0.0
    if replica.heartbeat is not None:
        if current is not None and current.heartbeat is not None:
            return max(0.0, (current.heartbeat - replica.heartbeat).total_seconds())
        if current is None and replica.server_time is not None:
            # The primary cannot be seen: how old the last heartbeat the replica applied is.
            return max(0.0, (replica.server_time - replica.heartbeat).total_seconds())
    delayed = replica.replay_paused or replica.apply_delay not in ("", "0", "0ms")
    if row is not None and row.get("state") == "streaming" and not delayed:
        # Replay keeps up with what arrives: the walsender's measured replay lag (it grows
        # while apply is stuck; NULL once the standby caught up and the primary went quiet).
        # Far better than the last replayed commit's age, which on a primary writing no
        # transactions (only e.g. checkpoint records) grows for no reason.
        return float(row.get("replay_lag_seconds") or 0.0)
    if replica.last_xact_replay_at is not None and replica.server_time is not None:
        return max(0.0, (replica.server_time - replica.last_xact_replay_at).total_seconds())
    return None


def _replication(
    obs: Observation,
    slot_name: str,
    slot: dict[str, Any] | None,
    row: dict[str, Any] | None,
    ambiguous: bool,
    primary: NodeRead,
    dr: NodeRead,
    writers: list[NodeRead],
    replica: NodeRead,
) -> Replication:
    current = writers[0] if writers else None
    if current is not None:
        # What the primary alone can tell, worth saying even when the DR side cannot be seen.
        if slot_name and slot is None:
            obs.notes.append(f"replication slot {slot_name!r} does not exist on the primary")
        elif slot is not None and not slot.get("active"):
            obs.notes.append(f"replication slot {slot_name!r} is not in use")
        if not current.replication:
            obs.notes.append(f"no standby is connected to the {current.obs.site} node")
        elif any(r.get("state") is None for r in current.replication):
            obs.notes.append(
                "pg_stat_replication details are hidden: the monitoring role lacks pg_monitor"
            )
    unseen = [r for r in (primary, dr) if not r.reachable]
    if unseen:
        for r in unseen:
            obs.notes.append(f"the {r.obs.site} side cannot be seen ({r.obs.outcome})")
        return Replication.UNKNOWN
    if len(writers) == 2:
        obs.notes.append("both nodes accept writes: the DR node was promoted (split brain)")
        return Replication.BROKEN
    if current is None:
        obs.notes.append("neither node is a primary: both are in recovery")
        return Replication.BROKEN
    name = replica.cluster_name or replica.obs.endpoint
    # "none": no WAL receiver at all; None: there is one, but its columns are hidden.
    receiver = "none" if replica.wal_receiver is None else replica.wal_receiver.get("status")
    if row is not None:
        flowing = row.get("state") in _FLOWING and receiver in (None, "streaming")
    else:
        flowing = ambiguous and receiver == "streaming"
    if slot is not None and slot.get("wal_status") == "lost":
        obs.notes.append(f"slot {slot_name!r} lost WAL the standby still needs: rebuild it")
        return Replication.BROKEN
    diverged = bool(current.timeline and replica.timeline) and current.timeline != replica.timeline
    if diverged and not flowing:
        obs.notes.append(
            f"timeline mismatch: primary on {current.timeline}, {name} on {replica.timeline} "
            "and not following"
        )
        return Replication.BROKEN
    if replica.apply_delay and replica.apply_delay not in ("0", "0ms"):
        obs.notes.append(
            f"{name} applies WAL late: recovery_min_apply_delay = {replica.apply_delay}"
        )
    if replica.replay_paused:
        obs.notes.append(f"WAL replay is paused on {name}")
        return Replication.PAUSED
    if flowing:
        if row is not None and row.get("state") == "catchup":
            obs.notes.append(f"{name} is catching up")
        return Replication.STREAMING
    if receiver == "none":
        obs.notes.append(f"{name} has no WAL receiver: it is not connected to a primary")
    else:
        obs.notes.append(f"{name}'s WAL receiver is {receiver or 'hidden'}, not streaming")
    return Replication.STOPPED


def _standby_row(
    current: NodeRead, replica: NodeRead, slot: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, bool]:
    """The primary's pg_stat_replication row for the DR standby, and whether several rows
    made that impossible to tell. Matched by the slot's walsender pid, then by
    application_name (a walreceiver's defaults to the standby's cluster_name), then a lone row.
    """
    rows = current.replication
    if slot is not None and slot.get("active_pid"):
        match = [r for r in rows if r.get("pid") == slot["active_pid"]]
        if match:
            return match[0], False
    if replica.cluster_name:
        match = [r for r in rows if r.get("application_name") == replica.cluster_name]
        if len(match) == 1:
            return match[0], False
    if len(rows) == 1:
        return rows[0], False
    return None, len(rows) > 1
