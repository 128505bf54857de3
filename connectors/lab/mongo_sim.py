"""A MongoDB replica set on loopback for the lab and tests: one mockupdb wire server per member.

No MongoDB server package exists here, so each member is a ``mockupdb.MockupDB`` answering over
the real wire protocol with documents shaped like MongoDB 7.0's (``connectors.lab.mongo_docs``);
pymongo talks to it exactly as to a real ``mongod``, including SCRAM authentication
(``connectors.lab.mongo_scram``), the streaming ``hello`` monitor and ``endSessions``.

Topology at start (a classic two-site PSA set): member 0 is the primary at the primary site,
member 1 the DR member (priority 0, so it is never elected on its own: failing over to DR is an
approved action, not an election), member 2 an arbiter at the primary site. With ``members > 3``
the extra members are priority-0 secondaries at the primary site. Roles and the configuration
then follow what the set is told (``replSetReconfig``, ``replSetStepDown``: see
``connectors.lab.mongo_exec``) and are kept in the state file across restarts.

Writes happen all the time on the primary: its optime is the wall clock. Secondaries follow after
``replication_delay`` seconds (0 by default) unless a fault freezes them. Faults act on the
current roles: ``primary_down`` stops whichever member is primary, the replica faults (``lag``,
``pause``, ``recovering``, ``standby_down``, ``timeout``) hit the data member at the other
configured site. Every command received is recorded (``received_commands()``); commands the
simulator does not model answer CommandNotFound.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

from bson import ObjectId
from mockupdb import MockupDB

from connectors.lab import mongo_docs as docs
from connectors.lab.mongo_data import DataCommands
from connectors.lab.mongo_exec import ExecutionCommands
from connectors.lab.mongo_scram import ScramServer
from connectors.lab.mongo_wire import WireServing

log = logging.getLogger(__name__)

FAULTS = ("lag", "pause", "standby_down", "primary_down", "timeout", "recovering", "heal")
MONITOR_USER, EXECUTE_USER = "bc_monitor", "bc_execute"
_NEVER = float("inf")


class MongoReplicaSetSimulator(ExecutionCommands, DataCommands, WireServing):
    platform = "mongodb"
    faults = FAULTS

    def __init__(
        self,
        state_path: Path | None = None,
        set_name: str = "rs-lab",
        members: int = 3,
        replication_delay: float = 0.0,
    ) -> None:
        if members < 2:
            raise ValueError("a replica set for DR needs at least two members")
        self.state_path = Path(state_path) if state_path else None
        self.set_name = set_name
        self.member_count = members
        self.replication_delay = replication_delay  # seconds a secondary trails the primary
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._members: list[docs.Member] = []
        self._servers: dict[int, MockupDB] = {}
        self._hung: set[int] = set()
        self._frozen_at: dict[int, float] = {}  # member index -> time its applier stopped
        self._down_applied: dict[int, float] = {}  # stopped member -> its last applied write
        self._writes_stopped_at: float | None = None  # the set lost its primary at this time
        self._write_block_at: float | None = None  # a stepdown holds writes from this time
        self._stepdown_until: dict[int, float] = {}  # member -> not electable before this time
        self._elections: list[tuple[float, int]] = []
        self._election: docs.ElectionMetrics | None = None
        self._config_version = 1
        self._timers: list[threading.Timer] = []
        self._data: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # ns -> (written, doc)
        self._counter = 0
        self._faults: set[str] = set()
        self._parked: list[tuple[float, int, int, Any]] = []  # deadline, member, counter, request
        self._auth: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._conn_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._next_conn = itertools.count(1)
        self._commands: deque[dict[str, Any]] = deque(maxlen=20000)
        self._scram = ScramServer()
        self._credentials: dict[str, dict[str, str]] = {}
        self._replica_set_id = ObjectId()
        self._running = False
        self._waiter: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start every member (on the ports used last time when free); return how to reach it."""
        state = self._load_state()
        now = time.time()
        self._credentials = state.get("credentials") or {
            MONITOR_USER: {"username": MONITOR_USER, "password": secrets.token_urlsafe(18)},
            EXECUTE_USER: {"username": EXECUTE_USER, "password": secrets.token_urlsafe(18)},
        }
        self._scram.add_user(
            MONITOR_USER, self._credentials[MONITOR_USER]["password"], ("clusterMonitor",)
        )
        # readWrite: the drill's marker document (bcservice.bc_drill); clusterManager: reconfig
        # and stepdown.
        self._scram.add_user(
            EXECUTE_USER,
            self._credentials[EXECUTE_USER]["password"],
            ("clusterMonitor", "clusterManager", "readWrite"),
        )
        ports = state.get("ports") or [None] * self.member_count
        topology = state.get("topology") or {}
        self._elections = [(now, int(topology.get("term", 1)))]
        self._config_version = int(topology.get("config_version", 1))
        self._members = self._initial_members(now)
        saved = topology.get("members") or []
        if len(saved) == len(self._members):
            for member, kept in zip(self._members, saved, strict=True):
                member.priority, member.votes = float(kept["priority"]), int(kept["votes"])
                if not member.arbiter:
                    member.state = docs.PRIMARY if kept.get("primary") else docs.SECONDARY
        for member, port in zip(self._members, ports, strict=False):
            self._serve(member, port)
        self._running = True
        self._waiter = threading.Thread(
            target=self._answer_parked, name="mongo-sim-hello", daemon=True
        )
        self._waiter.start()
        with self._lock:
            if self._primary() is None:
                self._writes_stopped_at = now
                self._elect_best(now, "electionTimeout")
        for fault in state.get("faults", []):
            self.inject(fault)
        self._save_state()
        return self.connection_info()

    def _initial_members(self, now: float) -> list[docs.Member]:
        members = []
        for index in range(self.member_count):
            arbiter = index == 2
            members.append(
                docs.Member(
                    index=index,
                    name=self._members[index].name if index < len(self._members) else "",
                    site="dr" if index == 1 else "primary",
                    arbiter=arbiter,
                    priority=1.0 if index == 0 else 0.0,
                    process_id=ObjectId(),
                    started_at=now,
                    state=docs.PRIMARY
                    if index == 0
                    else docs.ARBITER
                    if arbiter
                    else docs.SECONDARY,
                )
            )
        return members

    def connection_info(self) -> dict[str, Any]:
        names = [m.name for m in self._members]
        return {
            "connection": {
                "hosts": names,
                "replica_set": self.set_name,
                "primary_member": names[0],
                "dr_member": names[1],
                "auth_source": "admin",
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
            self._parked.clear()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._wake.notify_all()
        _stop_all(servers)

    def add_user(self, username: str, password: str, roles: tuple[str, ...] = ()) -> None:
        """Create a user (tests use one without clusterMonitor to see Unauthorized)."""
        self._scram.add_user(username, password, roles)

    def received_commands(self, name: str | None = None) -> list[dict[str, Any]]:
        """Commands received, oldest first: {at, member, command, doc}; SASL payloads hidden."""
        with self._lock:
            items = list(self._commands)
        if name:
            items = [c for c in items if c["command"].lower() == name.lower()]
        return items

    # -- faults ------------------------------------------------------------------------------

    def _replica(self) -> docs.Member:
        """The data member at the configured site other than the current primary's."""
        primary = self._primary()
        if primary is not None and primary.index == 1:
            return self._members[0]
        return self._members[1]

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        to_stop: list[MockupDB] = []
        to_start: list[tuple[docs.Member, int]] = []
        with self._lock:
            now = time.time()
            primary, replica = self._primary(), self._replica()
            if fault == "heal":
                to_start = self._heal(now)
            elif fault in ("lag", "pause"):
                self._frozen_at.setdefault(replica.index, now)
            elif fault == "recovering":
                self._frozen_at.setdefault(replica.index, now)
                replica.state = docs.RECOVERING
            elif fault == "timeout":
                self._frozen_at.setdefault(replica.index, now)
                self._hung.add(replica.index)
                replica.reachable, replica.down_since = False, now
                replica.down_reason = (
                    f"Request timed out: replSetHeartbeat to {replica.name} exceeded 10000 ms"
                )
            elif fault == "standby_down" and replica.index in self._servers:
                to_stop.append(self._stop_member(replica, now))
            elif fault == "primary_down" and primary is not None:
                to_stop.append(self._stop_member(primary, now))
            if fault == "heal":
                self._faults.clear()
            else:
                self._faults.add(fault)
            self._bump()
        _stop_all(to_stop)
        for member, port in to_start:
            self._serve(member, port)
        if fault == "heal":
            self._converge()
        self._save_state()

    def _stop_member(self, member: docs.Member, now: float) -> MockupDB:
        """The member's process stops; it keeps its data and comes back as a secondary."""
        self._down_applied[member.index] = self._applied(member, now) or now
        if member.state == docs.PRIMARY:
            self._writes_stopped_at = now
            self._write_block_at = None
        member.state = docs.SECONDARY
        member.reachable, member.down_since = False, now
        member.down_reason = f"Error connecting to {member.name} :: caused by :: Connection refused"
        return self._servers.pop(member.index)

    def _heal(self, now: float) -> list[tuple[docs.Member, int]]:
        restart = []
        for member in self._members:
            if member.index not in self._servers and self._running:
                restart.append((member, int(member.name.rsplit(":", 1)[1])))
                member.process_id, member.started_at = ObjectId(), now
            member.reachable, member.down_since, member.down_reason = True, None, ""
            if member.state == docs.RECOVERING:
                member.state = docs.SECONDARY
        self._down_applied.clear()  # a returning member rolls back what the set never had
        self._hung.clear()
        self._frozen_at.clear()  # secondaries catch up at once
        return restart

    def _converge(self) -> None:
        """Without a primary the freshest electable member wins a new term at once (a real set
        waits for electionTimeoutMillis first; the lab converges immediately after a heal)."""
        with self._lock:
            if self._primary() is None:
                self._elect_best(time.time(), "electionTimeout")

    # -- state -------------------------------------------------------------------------------

    def _primary(self) -> docs.Member | None:
        return next((m for m in self._members if m.state == docs.PRIMARY and m.reachable), None)

    def _bump(self) -> None:
        """The topology changed: parked awaitable hellos answer now. Call with the lock held."""
        self._counter += 1
        self._wake.notify_all()

    def _last_write(self, now: float) -> float:
        """The newest write in the set: now while a primary takes writes."""
        if self._primary() is not None:
            return self._write_block_at or now
        return self._writes_stopped_at or now

    def _applied(self, member: docs.Member, now: float) -> float | None:
        """Wall-clock time of the last write ``member`` has applied."""
        if member.arbiter:
            return None
        if member.index in self._down_applied:
            return self._down_applied[member.index]
        last = self._last_write(now)
        if member.state == docs.PRIMARY and member.reachable:
            return last
        return min(last, now - self.replication_delay, self._frozen_at.get(member.index, _NEVER))

    def _committed(self, now: float) -> float | None:
        """The majority-committed point: the newest write a majority of voters has applied."""
        voters = [m for m in self._members if m.votes and not m.arbiter]
        applied = sorted((self._applied(m, now) or 0.0 for m in voters), reverse=True)
        if not applied:
            return None
        total_votes = len([m for m in self._members if m.votes])
        needed = min(total_votes // 2 + 1, len(applied))
        return applied[needed - 1]

    def snapshot(self, now: float | None = None) -> docs.SetSnapshot:
        with self._lock:
            now = time.time() if now is None else now
            primary = self._primary()
            for member in self._members:
                member.applied = self._applied(member, now)
                syncing = (
                    primary is not None
                    and member is not primary
                    and not member.arbiter
                    and member.state == docs.SECONDARY
                    and member.reachable
                )
                member.sync_source = primary.index if syncing and primary else None
            return docs.SetSnapshot(
                set_name=self.set_name,
                replica_set_id=self._replica_set_id,
                now=now,
                members=[docs.Member(**vars(m)) for m in self._members],
                elections=list(self._elections),
                committed=self._committed(now),
                topology_counter=self._counter,
                config_version=self._config_version,
                election=self._election,
            )

    def status(self) -> dict[str, Any]:
        snap = self.snapshot()
        primary = snap.primary
        members = []
        for m in snap.members:
            members.append(
                {
                    "name": m.name,
                    "site": m.site,
                    "state": docs.STATE_STR[m.state] if m.reachable else docs.NOT_REACHABLE,
                    "priority": m.priority,
                    "votes": m.votes,
                    "serving": m.index in self._servers and m.index not in self._hung,
                    "applied": m.applied,
                    "lag_seconds": (
                        round(primary.applied - m.applied, 3)
                        if primary and m.applied is not None and primary.applied is not None
                        else None
                    ),
                }
            )
        return {
            "platform": self.platform,
            "running": self._running,
            "replica_set": self.set_name,
            "primary": primary.name if primary else None,
            "term": snap.term,
            "config_version": snap.config_version,
            "faults": sorted(self._faults),
            "members": members,
            "commands_received": len(self._commands),
        }

    def _load_state(self) -> dict[str, Any]:
        if self.state_path and self.state_path.exists():
            try:
                return json.loads(self.state_path.read_text())
            except (OSError, ValueError):
                log.warning("ignoring unreadable simulator state %s", self.state_path)
        return {}

    def _save_state(self) -> None:
        if not self.state_path:
            return
        with self._lock:
            state = {
                "set_name": self.set_name,
                "ports": [int(m.name.rsplit(":", 1)[1]) for m in self._members],
                "credentials": self._credentials,
                "faults": sorted(self._faults),
                # Roles and configuration survive a daemon restart: an executed switchover
                # stays done.
                "topology": {
                    "term": self._elections[-1][1],
                    "config_version": self._config_version,
                    "members": [
                        {
                            "priority": m.priority,
                            "votes": m.votes,
                            "primary": m.state == docs.PRIMARY,
                        }
                        for m in self._members
                    ],
                },
            }
            # Still under the lock: election timers and command handlers save concurrently,
            # and they share the temporary file.
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.chmod(0o600)  # it holds the lab passwords
            tmp.replace(self.state_path)


def _stop_all(servers: list[MockupDB]) -> None:
    # MockupDB.stop() waits up to a second for its accept loop to notice; stop them together.
    threads = [threading.Thread(target=server.stop, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
