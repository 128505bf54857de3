"""A MongoDB replica set on loopback for the lab and tests: one mockupdb wire server per member.

No MongoDB server package exists here, so each member is a ``mockupdb.MockupDB`` answering over
the real wire protocol with documents shaped like MongoDB 7.0's (``connectors.lab.mongo_docs``);
pymongo talks to it exactly as to a real ``mongod``, including SCRAM authentication
(``connectors.lab.mongo_scram``), the streaming ``hello`` monitor and ``endSessions``.

Topology (a classic two-site PSA set): member 0 is the primary at the primary site, member 1 the
DR member (priority 0, so it is never elected on its own: failing over to DR is an approved
action, not an election), member 2 an arbiter at the primary site. With ``members > 3`` the extra
members are priority-0 secondaries at the primary site. Because no data-bearing member other than
member 0 is electable, when the primary stops the set has no primary, as a real PSA set with a
priority-0 DR member would.

Writes happen all the time on the primary: its optime is the wall clock. Secondaries follow
immediately unless a fault freezes them. Every command received is recorded for the execution
tests (``received_commands()``); commands the simulator does not model answer CommandNotFound.
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
from connectors.lab.mongo_scram import ScramServer
from connectors.lab.mongo_wire import WireServing

log = logging.getLogger(__name__)

FAULTS = ("lag", "pause", "standby_down", "primary_down", "timeout", "recovering", "heal")
MONITOR_USER, EXECUTE_USER = "bc_monitor", "bc_execute"


class MongoReplicaSetSimulator(WireServing):
    platform = "mongodb"
    faults = FAULTS

    def __init__(
        self, state_path: Path | None = None, set_name: str = "rs-lab", members: int = 3
    ) -> None:
        if members < 2:
            raise ValueError("a replica set for DR needs at least two members")
        self.state_path = Path(state_path) if state_path else None
        self.set_name = set_name
        self.member_count = members
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._members: list[docs.Member] = []
        self._servers: dict[int, MockupDB] = {}
        self._hung: set[int] = set()
        self._frozen_at: dict[int, float] = {}  # member index -> time its applier stopped
        self._writes_stopped_at: float | None = None
        self._elections: list[tuple[float, int]] = []
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
        self._scram.add_user(
            EXECUTE_USER,
            self._credentials[EXECUTE_USER]["password"],
            ("clusterMonitor", "clusterManager"),
        )
        ports = state.get("ports") or [None] * self.member_count
        self._elections = [(now, 1)]
        self._members = []
        for index in range(self.member_count):
            arbiter = index == 2
            self._members.append(
                docs.Member(
                    index=index,
                    name="",
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
        for member, port in zip(self._members, ports, strict=False):
            self._serve(member, port)
        self._running = True
        self._waiter = threading.Thread(
            target=self._answer_parked, name="mongo-sim-hello", daemon=True
        )
        self._waiter.start()
        for fault in state.get("faults", []):
            self.inject(fault)
        self._save_state()
        return self.connection_info()

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

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        to_stop: list[MockupDB] = []
        to_start: list[tuple[docs.Member, int]] = []
        with self._lock:
            now = time.time()
            primary, dr = self._members[0], self._members[1]
            if fault == "heal":
                to_start = self._heal(now)
            elif fault in ("lag", "pause"):
                self._frozen_at.setdefault(dr.index, now)
            elif fault == "recovering":
                self._frozen_at.setdefault(dr.index, now)
                dr.state = docs.RECOVERING
            elif fault == "timeout":
                self._frozen_at.setdefault(dr.index, now)
                self._hung.add(dr.index)
                dr.reachable, dr.down_since = False, now
                dr.down_reason = (
                    f"Request timed out: replSetHeartbeat to {dr.name} exceeded 10000 ms"
                )
            elif fault == "standby_down" and dr.index in self._servers:
                self._frozen_at.setdefault(dr.index, now)
                to_stop.append(self._servers.pop(dr.index))
                dr.reachable, dr.down_since = False, now
                dr.down_reason = f"Error connecting to {dr.name} :: caused by :: Connection refused"
            elif fault == "primary_down" and primary.index in self._servers:
                to_stop.append(self._servers.pop(primary.index))
                primary.reachable, primary.down_since = False, now
                primary.down_reason = (
                    f"Error connecting to {primary.name} :: caused by :: Connection refused"
                )
                self._writes_stopped_at = now
            if fault == "heal":
                self._faults.clear()
            else:
                self._faults.add(fault)
            self._counter += 1  # topology changed: parked awaitable hellos answer now
            self._wake.notify_all()
        _stop_all(to_stop)
        for member, port in to_start:
            self._serve(member, port)
        self._save_state()

    def _heal(self, now: float) -> list[tuple[docs.Member, int]]:
        restart = []
        for member in self._members:
            if member.index not in self._servers and self._running:
                restart.append((member, int(member.name.rsplit(":", 1)[1])))
                member.process_id, member.started_at = ObjectId(), now
            member.reachable, member.down_since, member.down_reason = True, None, ""
            if member.state == docs.RECOVERING:
                member.state = docs.SECONDARY
        if self._writes_stopped_at is not None:
            # The old primary restarts and, being the only electable member, wins a new term.
            self._elections.append((now, self._elections[-1][1] + 1))
            self._writes_stopped_at = None
        self._hung.clear()
        self._frozen_at.clear()  # secondaries catch up at once
        return restart

    # -- state -------------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> docs.SetSnapshot:
        with self._lock:
            now = time.time() if now is None else now
            primary = self._members[0]
            primary_alive = primary.reachable and primary.state == docs.PRIMARY
            last_write = now if primary_alive else (self._writes_stopped_at or now)
            for member in self._members:
                if member.arbiter:
                    member.applied, member.sync_source = None, None
                    continue
                if member is primary:
                    member.applied = last_write
                    member.sync_source = None
                    continue
                member.applied = min(last_write, self._frozen_at.get(member.index, last_write))
                syncing = primary_alive and member.state == docs.SECONDARY and member.reachable
                member.sync_source = primary.index if syncing else None
            committed = min(m.applied for m in self._members if m.applied is not None)
            return docs.SetSnapshot(
                set_name=self.set_name,
                replica_set_id=self._replica_set_id,
                now=now,
                members=[docs.Member(**vars(m)) for m in self._members],
                elections=list(self._elections),
                committed=committed,
                topology_counter=self._counter,
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
        state = {
            "set_name": self.set_name,
            "ports": [int(m.name.rsplit(":", 1)[1]) for m in self._members],
            "credentials": self._credentials,
            "faults": sorted(self._faults),
        }
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
