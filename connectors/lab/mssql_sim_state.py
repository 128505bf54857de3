"""The shared state of the simulated availability group: roles, outages, suspensions, failovers.

No sockets here (``connectors.lab.mssql_sim`` owns the TDS servers): ``AgState`` says what each
replica is, turns faults and T-SQL commands into state changes, and computes a consistent
``AgSnapshot`` from which every replica's DMV rows are built. Log flow is modelled with times:
the primary's log ends "now" while it is up; a secondary has received and redone everything up
to the earliest of the primary's end of log and whatever froze it (an outage, a hang, a
suspension, stalled redo).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pysqlbridge.tds.result import QueryError

from connectors.lab import mssql_sim_rows as rows

SITES = (("SQLPRI", "primary"), ("SQLDR", "dr"))


@dataclass
class Replica:
    name: str
    site: str
    replica_id: str
    metadata_id: int
    role: str  # stored role: PRIMARY or SECONDARY (RESOLVING is derived)
    port: int | None = None
    up: bool = True
    down_since: float | None = None
    hung_since: float | None = None
    suspended: str | None = None
    recv_frozen_at: float | None = None
    redo_frozen_at: float | None = None
    split: bool = False  # claims PRIMARY on its own (split_brain)
    availability_mode: str = "SYNCHRONOUS_COMMIT"  # ALTER AVAILABILITY GROUP ... MODIFY REPLICA
    recovery_t: float | None = None  # where the current role began (recovery_lsn)
    resync_until: float | None = None  # SYNCHRONIZING (catching up) until then

    def saved(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "role": self.role,
            "up": self.up,
            "hung": self.hung_since is not None,
            "suspended": self.suspended,
            "recv_frozen": self.recv_frozen_at is not None,
            "redo_frozen": self.redo_frozen_at is not None,
            "split": self.split,
            "availability_mode": self.availability_mode,
            "recovery_t": self.recovery_t,
        }

    def restore(self, saved: dict[str, Any], now: float) -> None:
        # Frozen positions restart from now: the lab's clock does not survive a restart.
        self.port = saved.get("port")
        self.role = saved.get("role") or self.role
        self.up = saved.get("up", True)
        self.down_since = None if self.up else now
        self.hung_since = now if saved.get("hung") else None
        self.suspended = saved.get("suspended")
        self.recv_frozen_at = now if saved.get("recv_frozen") else None
        self.redo_frozen_at = now if saved.get("redo_frozen") else None
        self.split = bool(saved.get("split"))
        self.availability_mode = saved.get("availability_mode") or self.availability_mode
        # An absolute point in the log (log positions are counted from the AG's creation).
        self.recovery_t = saved.get("recovery_t")

    def end_of_log(self, now: float) -> float:
        return now if self.up else (self.down_since or now)


class AgState:
    def __init__(
        self,
        ag_name: str,
        databases: tuple[str, ...],
        ids: dict[str, Any],
        saved: dict[str, Any],
        resync_seconds: float = 0.0,
    ) -> None:
        self.ag_name = ag_name
        # How long a secondary stays SYNCHRONIZING after a planned failover or a resume before
        # it is SYNCHRONIZED again; a real one takes a moment to reconnect and catch up.
        self.resync_seconds = resync_seconds
        self.database_names = databases
        self.ids = ids
        self.lock = threading.RLock()
        now = time.time()
        self.replicas: list[Replica] = []
        for index, (name, site) in enumerate(SITES, start=1):
            replica = Replica(
                name=name,
                site=site,
                replica_id=ids["replicas"][name],
                metadata_id=65535 + index,
                role="PRIMARY" if site == "primary" else "SECONDARY",
            )
            replica.restore(saved.get(name) or {}, now)
            self.replicas.append(replica)

    def get(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def with_role(self, role: str) -> Replica | None:
        return next((r for r in self.replicas if r.role == role), None)

    # -- faults ------------------------------------------------------------------------------

    def inject(self, fault: str) -> list[str]:
        """Apply a fault; return the names of replicas whose servers must stop."""
        with self.lock:
            now = time.time()
            primary, secondary = self.with_role("PRIMARY"), self.with_role("SECONDARY")
            if fault == "heal":
                self.heal()
                return []
            if fault == "primary_down":
                if primary is None or not primary.up:
                    return []
                primary.up, primary.down_since = False, now
                return [primary.name]
            if secondary is None:
                raise ValueError(f"{fault} needs a secondary replica; there is none now")
            if fault == "lag":
                secondary.redo_frozen_at = secondary.redo_frozen_at or now
            elif fault == "pause":
                self.suspend(secondary, "SUSPEND_FROM_USER", now)
            elif fault == "timeout":
                secondary.hung_since = secondary.hung_since or now
            elif fault == "standby_down" and secondary.up:
                secondary.up, secondary.down_since = False, now
                return [secondary.name]
            elif fault == "split_brain":
                secondary.role, secondary.split = "PRIMARY", True
            return []

    def heal(self) -> None:
        with self.lock:
            for replica in self.replicas:
                replica.up, replica.down_since, replica.hung_since = True, None, None
                replica.redo_frozen_at = None
                if replica.split:
                    replica.role, replica.split = "SECONDARY", False
                # A suspension left by a forced failover stays until someone resumes it, as on
                # a real server; heal only undoes injected faults.
                if replica.suspended != "SUSPEND_FROM_PARTNER":
                    replica.suspended, replica.recv_frozen_at = None, None

    @staticmethod
    def suspend(replica: Replica, reason: str, at: float) -> None:
        replica.suspended = replica.suspended or reason
        replica.recv_frozen_at = replica.recv_frozen_at or at

    # -- T-SQL commands ----------------------------------------------------------------------

    def failover(self, name: str, forced: bool) -> None:
        """ALTER AVAILABILITY GROUP ... FAILOVER | FORCE_FAILOVER_ALLOW_DATA_LOSS on ``name``."""
        with self.lock:
            me = self.get(name)
            view = self.snapshot().replica(name)
            if me.role == "PRIMARY":
                raise QueryError(ALREADY_PRIMARY.format(ag=self.ag_name), number=41122)
            if not forced and (view is None or rows.database_sync(view)[0] != "SYNCHRONIZED"):
                raise QueryError(NOT_SYNCHRONIZED.format(ag=self.ag_name), number=41142)
            now = time.time()
            # The new primary's log starts where its hardened log ends: everything it received
            # is redone before it takes over (recovery_lsn on its rows). A planned failover
            # needs SYNCHRONIZED, so that is the old primary's end of log.
            taken_over_at = view.received_t if view is not None else now
            for other in self.replicas:
                if other is me or other.role != "PRIMARY":
                    continue
                other.role, other.split = "SECONDARY", False
                other.recovery_t = taken_over_at
                if forced:
                    # The former primary may hold log the new primary never received: its
                    # databases stay suspended until someone resumes them.
                    self.suspend(other, "SUSPEND_FROM_PARTNER", other.end_of_log(now))
                elif self.resync_seconds:
                    other.resync_until = now + self.resync_seconds
            me.role, me.split, me.recovery_t = "PRIMARY", False, taken_over_at
            me.resync_until = None
            me.suspended = me.recv_frozen_at = me.redo_frozen_at = None  # redo finishes first

    def set_hadr(self, name: str, suspend: bool) -> None:
        """ALTER DATABASE ... SET HADR SUSPEND|RESUME run on ``name`` (all databases at once:
        the lab moves them together). On the primary it acts on every secondary."""
        with self.lock:
            me = self.get(name)
            on_primary = me.role == "PRIMARY"
            targets = [r for r in self.replicas if r.role == "SECONDARY"] if on_primary else [me]
            for target in targets:
                if suspend:
                    reason = "SUSPEND_FROM_PARTNER" if on_primary else "SUSPEND_FROM_USER"
                    self.suspend(target, reason, time.time())
                elif target.suspended:
                    target.suspended = target.recv_frozen_at = None
                    if self.resync_seconds:
                        target.resync_until = time.time() + self.resync_seconds

    def modify_availability_mode(self, name: str, replica: str, mode: str) -> None:
        """ALTER AVAILABILITY GROUP ... MODIFY REPLICA ON 'replica' WITH (AVAILABILITY_MODE =
        mode), run on ``name``; only the primary may change the group's configuration."""
        with self.lock:
            if self.get(name).role != "PRIMARY":
                raise QueryError(NOT_PRIMARY_FOR_MODIFY.format(ag=self.ag_name))
            found = next((r for r in self.replicas if r.name.lower() == replica.lower()), None)
            if found is None:
                raise QueryError(NO_SUCH_REPLICA.format(ag=self.ag_name, name=replica))
            found.availability_mode = mode

    # -- snapshot ----------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> rows.AgSnapshot:
        """The whole AG at one instant (what every replica's DMVs are built from)."""
        with self.lock:
            now = time.time() if now is None else now
            primaries = [r for r in self.replicas if r.role == "PRIMARY"]
            source = primaries[0] if len(primaries) == 1 else None
            return rows.AgSnapshot(
                ag_name=self.ag_name,
                group_id=self.ids["group_id"],
                created=self.ids["created"],
                base_t=self.ids["created"],
                now=now,
                replicas=[self._view(r, source, now) for r in self.replicas],
                databases=[
                    rows.Database(name, 5 + i, self.ids["databases"][name])
                    for i, name in enumerate(self.database_names)
                ],
            )

    def _view(self, r: Replica, source: Replica | None, now: float) -> rows.ReplicaView:
        view = rows.ReplicaView(r.name, r.site, r.replica_id, r.metadata_id, r.role)
        view.availability_mode, view.recovery_t = r.availability_mode, r.recovery_t
        if r.role == "PRIMARY":
            view.end_t = view.received_t = view.redone_t = r.end_of_log(now)
            view.connected = not any(x.split for x in self.replicas)
            return view
        if source is None or not source.up:
            view.role = "RESOLVING"  # manual failover mode: it waits for an operator
        hung_out = r.hung_since is not None and now - r.hung_since >= rows.SESSION_TIMEOUT_SECONDS
        view.connected = bool(r.up and source and source.up and not hung_out)
        source_end = source.end_of_log(now) if source else now
        stops = [source_end, r.recv_frozen_at, r.down_since, r.hung_since]
        view.received_t = min(t for t in stops if t is not None)
        view.redone_t = min(view.received_t, r.redo_frozen_at or view.received_t)
        view.end_t, view.source_end_t = view.received_t, source_end
        view.suspended = r.suspended
        view.sending = view.received_t >= source_end
        view.redoing = r.redo_frozen_at is None and view.sending
        view.resyncing = r.resync_until is not None and now < r.resync_until
        if not r.up:
            view.connect_error = (10061, refused(r.name), r.down_since or now)
        elif hung_out:
            view.connect_error = (35206, timed_out(r.name, r.replica_id), r.hung_since or now)
        elif source is not None and not source.up:
            view.connect_error = (10061, refused(source.name), source.down_since or now)
        return view


ALREADY_PRIMARY = (
    "Cannot failover availability group '{ag}' to this instance of SQL Server. The local "
    "availability replica is already the primary replica of the availability group. To failover "
    "this availability group to another instance, run the failover command on that instance."
)
NOT_SYNCHRONIZED = (
    "The availability replica for availability group '{ag}' on this instance of SQL Server cannot "
    "become the primary replica. One or more databases are not synchronized or have not joined "
    "the availability group. If the availability replica uses the asynchronous-commit mode, "
    "consider performing a forced manual failover (with possible data loss). Otherwise, once all "
    "local secondary databases are joined and synchronized, you can perform a planned manual "
    "failover to this secondary replica (without data loss)."
)


NOT_PRIMARY_FOR_MODIFY = (
    "Availability group '{ag}' failed to process the MODIFY REPLICA command. The local "
    "availability replica is not in a state that could process the command. Verify that the "
    "availability group is online and that the local availability replica is the primary "
    "replica, then retry the command."
)
NO_SUCH_REPLICA = (
    "Availability group '{ag}' has no availability replica named '{name}'. Verify the replica "
    "name (sys.availability_replicas.replica_server_name) and retry."
)


def refused(name: str) -> str:
    return (
        f"Connection attempt to availability replica '{name}' failed with error: "
        "'10061(No connection could be made because the target machine actively refused it.)'."
    )


def timed_out(name: str, replica_id: str) -> str:
    return (
        "A connection timeout has occurred on a previously established connection to availability "
        f"replica '{name}' with id [{replica_id}]. Either a networking or a firewall issue exists "
        "or the availability replica has transitioned to the resolving role."
    )
