"""The state-changing half of the MongoDB simulator: reconfig, stepdown, elections, drill writes.

Mixed into ``MongoReplicaSetSimulator`` (which owns the members, the clock-driven optimes and the
faults). The behaviour follows MongoDB 7.0 where the executions depend on it:

- ``replSetReconfig`` runs on the primary only, needs a higher ``version``, keeps the primary
  electable and changes at most one vote; ``force: true`` is accepted on any member and bumps the
  version by a large random number, as ``mongod`` does. A primary that is no longer electable
  under a new configuration steps down; a set left without a primary elects the freshest
  electable member when a majority of the voters can be reached.
- ``replSetStepDown`` holds writes, waits up to ``secondaryCatchUpPeriodSecs`` for an electable
  secondary to catch up (code 262 ExceededTimeLimit when none does, writes resume), then steps
  down; the caught-up secondary is handed the election (``stepUpRequestSkipDryRun``) after
  ``HANDOFF_SECONDS``, and the old primary is not electable for the stepdown period.
- ``replSetFreeze``: N > 0 keeps a secondary from being elected for N s, 0 lifts that and the
  stepdown period alike.
- ``insert``/``find``: see ``connectors.lab.mongo_data``.

Privileges follow MongoDB's built-in roles: ``clusterManager`` for reconfig and stepdown,
``readWrite`` for insert, ``read``/``readWrite`` for find; otherwise code 13 Unauthorized.
Not modelled: adding/removing members, priority takeover, rollback files, write concerns.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.lab import mongo_docs as docs

HANDOFF_SECONDS = 0.2  # stepdown -> the handed-off election completes (real sets: ~0.1-0.5 s)
PROMPT_ELECTION_SECONDS = 0.2  # forced reconfig leaving one electable voter -> it is elected
_MANAGER = {"clusterManager", "root", "clusterAdmin"}
_WRITE = {"readWrite", "readWriteAnyDatabase", "root"}
_READ = _WRITE | {"read", "readAnyDatabase"}
COMMAND_ROLES = {
    "replsetreconfig": _MANAGER,
    "replsetstepdown": _MANAGER,
    "replsetfreeze": _MANAGER,
    "insert": _WRITE,
    "find": _READ,
}


def _error(code: int, name: str, message: str) -> dict[str, Any]:
    return docs.command_error(code, name, message)


class ExecutionCommands:
    """Reconfig, stepdown, elections and drill documents; see the module docstring."""

    _lock: threading.RLock
    _members: list[docs.Member]
    _servers: dict[int, Any]
    _hung: set[int]
    _frozen_at: dict[int, float]
    _down_applied: dict[int, float]
    _writes_stopped_at: float | None
    _write_block_at: float | None
    _stepdown_until: dict[int, float]
    _elections: list[tuple[float, int]]
    _election: docs.ElectionMetrics | None
    _config_version: int
    _timers: list[threading.Timer]
    _data: dict[str, list[tuple[float, dict[str, Any]]]]
    _running: bool
    set_name: str

    # provided by the simulator
    _primary: Callable[[], docs.Member | None]
    _applied: Callable[[docs.Member, float], float | None]
    _committed: Callable[[float], float | None]
    _bump: Callable[[], None]
    _save_state: Callable[[], None]
    _insert: Callable[[int, dict[str, Any]], dict[str, Any]]
    _find: Callable[[int, dict[str, Any]], dict[str, Any]]
    _heal: Callable[[float], list[tuple[docs.Member, int]]]
    _serve: Callable[[docs.Member, int | None], None]
    _faults: set[str]

    # -- entry point from the wire -----------------------------------------------------------

    def _execute(self, index: int, name: str, request: Any) -> dict[str, Any] | None:
        """Answer a state-changing or data command; None when ``name`` is not one of them."""
        handlers = {
            "replsetreconfig": self._reconfig,
            "replsetstepdown": self._step_down,
            "replsetfreeze": self._freeze,
            "insert": self._insert,  # connectors.lab.mongo_data
            "find": self._find,
        }
        handler = handlers.get(name)
        return None if handler is None else handler(index, request.doc)

    # -- elections ---------------------------------------------------------------------------

    def _reachable(self, member: docs.Member) -> bool:
        return member.reachable and member.index in self._servers and member.index not in self._hung

    def _electable(self, member: docs.Member, now: float) -> bool:
        return (
            not member.arbiter
            and member.priority > 0
            and member.votes > 0
            and member.state == docs.SECONDARY
            and self._reachable(member)
            and self._stepdown_until.get(member.index, 0.0) <= now
        )

    def _majority_reachable(self) -> bool:
        total = sum(m.votes for m in self._members)
        present = sum(m.votes for m in self._members if self._reachable(m))
        return total > 0 and present > total // 2

    def _elect(self, candidate: docs.Member, now: float, reason: str) -> None:
        """``candidate`` wins a new term. Call with the lock held."""
        applied = {m.index: self._applied(m, now) for m in self._members if not m.arbiter}
        voters = tuple(
            m.index
            for m in self._members
            if m is not candidate and m.votes and not m.arbiter and self._reachable(m)
        )
        term = self._elections[-1][1] + 1
        total = sum(m.votes for m in self._members)
        self._election = docs.ElectionMetrics(
            candidate=candidate.index,
            term=term,
            reason=reason,
            at=now,
            priority=candidate.priority,
            votes_needed=total // 2 + 1,
            last_committed=self._committed(now),
            applied=applied,
            voters=voters,
        )
        candidate.state = docs.PRIMARY
        self._frozen_at.pop(candidate.index, None)  # a primary writes; it applies nothing
        self._elections.append((now, term))
        self._writes_stopped_at = self._write_block_at = None
        self._bump()

    def _elect_best(self, now: float, reason: str) -> docs.Member | None:
        """With no primary: the freshest electable member wins, given a majority of voters."""
        if self._primary() is not None or not self._majority_reachable():
            return None
        data = [m for m in self._members if not m.arbiter and self._reachable(m)]
        freshest = max((self._applied(m, now) or 0.0 for m in data), default=0.0)
        candidates = [
            m
            for m in self._members
            if self._electable(m, now) and (self._applied(m, now) or 0.0) >= freshest
        ]
        if not candidates:
            return None
        winner = max(candidates, key=lambda m: (m.priority, -m.index))
        self._elect(winner, now, reason)
        return winner

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        def run() -> None:
            with self._lock:
                if not self._running:
                    return
                action()
            self._save_state()

        timer = threading.Timer(delay, run)
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    # -- replSetReconfig ---------------------------------------------------------------------

    def _reconfig(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        new, force = doc.get("replSetReconfig"), bool(doc.get("force"))
        if not isinstance(new, dict):
            return _error(14, "TypeMismatch", "replSetReconfig must be an object")
        with self._lock:
            now = time.time()
            me = self._members[index]
            if not force and me.state != docs.PRIMARY:
                state = docs.STATE_STR[me.state]
                return _error(
                    10107,
                    "NotWritablePrimary",
                    "replSetReconfig should only be run on a writable PRIMARY. "
                    f"Current state {state};",
                )
            problem = self._config_problem(new, force)
            if problem:
                return problem
            by_id = {int(m["_id"]): m for m in new["members"]}
            version = int(new.get("version", 0))
            if force:
                # mongod adds a large random increment so that a forced config wins over any
                # config the unreachable members may still hold.
                self._config_version = max(version, self._config_version) + random.randint(
                    10_000, 100_000
                )
            else:
                self._config_version = version
            for member in self._members:
                entry = by_id[member.index]
                member.priority = float(entry.get("priority", 0 if member.arbiter else 1))
                member.votes = int(entry.get("votes", 1))
            primary = self._primary()
            if primary is not None and (primary.priority == 0 or primary.votes == 0):
                # It learns the new config (at once here, by heartbeat for real) and steps down.
                primary.state = docs.SECONDARY
                self._writes_stopped_at = self._applied(primary, now) or now
            self._bump()
            if self._primary() is None:
                self._schedule(PROMPT_ELECTION_SECONDS, self._prompt_election)
        self._save_state()
        return {"ok": 1.0}

    def _prompt_election(self) -> None:
        self._elect_best(time.time(), "electionTimeout")

    def _config_problem(self, new: dict[str, Any], force: bool) -> dict[str, Any] | None:
        """Validate a proposed configuration against the current one (MongoDB's rules)."""
        if new.get("_id") != self.set_name:
            return _error(
                93,
                "InvalidReplicaSetConfig",
                f"Attempting to reconfigure a replica set with name {new.get('_id')}, but "
                f"command line reports {self.set_name}; rejecting",
            )
        version = new.get("version")
        if not isinstance(version, int):
            return _error(93, "InvalidReplicaSetConfig", "version field value must be a number")
        if not force and version <= self._config_version:
            return _error(
                103,
                "NewReplicaSetConfigurationIncompatible",
                f"New replica set configuration version must be greater than old, but "
                f"{version} is not greater than {self._config_version} for replica set "
                f"{self.set_name}",
            )
        members = new.get("members") or []
        current = {m.index: m for m in self._members}
        proposed = {int(m.get("_id", -1)): m for m in members if isinstance(m, dict)}
        if set(proposed) != set(current) or any(
            proposed[i].get("host") != current[i].name for i in current
        ):
            return _error(
                93,
                "InvalidReplicaSetConfig",
                "the lab does not model adding, removing or moving members: keep every _id "
                "and host as replSetGetConfig gave them",
            )
        for i, entry in proposed.items():
            votes, priority = entry.get("votes", 1), float(entry.get("priority", 1))
            if votes not in (0, 1):
                return _error(
                    93,
                    "InvalidReplicaSetConfig",
                    f"votes field value is {votes} but must be 0 or 1",
                )
            if votes == 0 and priority > 0:
                return _error(
                    93, "InvalidReplicaSetConfig", "priority must be 0 when non-voting (votes:0)"
                )
            if current[i].arbiter and priority > 0:
                return _error(93, "InvalidReplicaSetConfig", "An arbiter must have priority 0")
        if force:
            return None
        primary = self._primary()
        if primary is not None:
            entry = proposed[primary.index]
            if float(entry.get("priority", 1)) == 0 or entry.get("votes", 1) == 0:
                return _error(
                    103,
                    "NewReplicaSetConfigurationIncompatible",
                    f"This node, {primary.name}, with _id {primary.index} is not electable under "
                    f"the new configuration with {{version: {version}, term: "
                    f"{self._elections[-1][1]}}} for replica set {self.set_name}",
                )
        changed = sum(1 for i, e in proposed.items() if e.get("votes", 1) != current[i].votes)
        if changed > 1:
            return _error(
                103,
                "NewReplicaSetConfigurationIncompatible",
                "Non force replica set reconfig can only add or remove at most 1 voting member.",
            )
        return None

    # -- replSetStepDown ---------------------------------------------------------------------

    def _step_down(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        step_down_secs = float(doc.get("replSetStepDown") or 60)
        catch_up = float(doc.get("secondaryCatchUpPeriodSecs", 10))
        force = bool(doc.get("force"))
        if step_down_secs < catch_up:
            return _error(
                2, "BadValue", "stepdown period must be longer than secondaryCatchUpPeriodSecs"
            )
        with self._lock:
            me = self._members[index]
            if me.state != docs.PRIMARY:
                return _error(10107, "NotWritablePrimary", "not primary so can't step down")
            started = time.time()
            self._write_block_at = started  # writes wait from here on
            self._bump()
        deadline = started + catch_up
        chosen: docs.Member | None = None
        while True:  # waiting outside the lock: the set keeps answering meanwhile
            with self._lock:
                now = time.time()
                caught_up = [
                    m
                    for m in self._members
                    if self._electable(m, now) and (self._applied(m, now) or 0.0) >= started
                ]
                if caught_up or now >= deadline or not self._running:
                    chosen = max(caught_up, key=lambda m: m.priority) if caught_up else None
                    break
            time.sleep(0.01)
        with self._lock:
            now = time.time()
            if chosen is None and not force:
                self._write_block_at = None  # the stepdown failed: writes resume
                self._bump()
                stamp = datetime.fromtimestamp(deadline, tz=UTC).isoformat(timespec="milliseconds")
                return _error(
                    262,
                    "ExceededTimeLimit",
                    f"No electable secondaries caught up as of {stamp}. Please use the "
                    "replSetStepDown command with the argument {force: true} to force node to "
                    "step down.",
                )
            me.state = docs.SECONDARY
            self._writes_stopped_at = started
            self._write_block_at = None
            self._stepdown_until[index] = now + step_down_secs
            self._bump()
        if chosen is not None:
            candidate = chosen
            self._schedule(HANDOFF_SECONDS, lambda: self._handoff(candidate))
        else:
            self._schedule(step_down_secs, self._prompt_election)
        self._save_state()
        return {"ok": 1.0}

    def _handoff(self, candidate: docs.Member) -> None:
        now = time.time()
        if self._primary() is None and self._electable(candidate, now):
            self._elect(candidate, now, "stepUpRequestSkipDryRun")
        else:
            self._elect_best(now, "electionTimeout")

    # -- replSetFreeze ----------------------------------------------------------------------

    def _freeze(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        """``replSetFreeze: N`` keeps a secondary from seeking election for N s; 0 unfreezes it,
        which also ends the ineligibility left by a stepdown (mongod keeps one deadline)."""
        seconds = float(doc.get("replSetFreeze") or 0)
        with self._lock:
            me = self._members[index]
            if me.state == docs.PRIMARY:
                return _error(
                    95, "NotSecondary", "cannot freeze node when primary or running for election"
                )
            if seconds <= 0:
                self._stepdown_until.pop(index, None)
                reply: dict[str, Any] = {"info": "unfreezing", "ok": 1.0}
            else:
                self._stepdown_until[index] = time.time() + seconds
                reply = {"ok": 1.0}
            if self._primary() is None:
                self._schedule(PROMPT_ELECTION_SECONDS, self._prompt_election)
        return reply

    # -- the lab's reset ---------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the starting topology: faults healed, member 0 primary with priority 1, the
        DR member and extra members priority 0, every member voting, configuration version 1.
        A lab convenience (tests, ``lab`` tooling), not something a replica set can be told."""
        to_start: list[tuple[docs.Member, int]] = []
        with self._lock:
            now = time.time()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            to_start = self._heal(now)
            self._faults.clear()
            self._stepdown_until.clear()
            self._config_version = 1
            for member in self._members:
                member.priority = 1.0 if member.index == 0 else 0.0
                member.votes = 1
            self._bump()
        for member, port in to_start:
            self._serve(member, port)
        with self._lock:
            first = self._members[0]
            if self._primary() is not first:
                for member in self._members:
                    if member.state == docs.PRIMARY:
                        member.state = docs.SECONDARY
                self._writes_stopped_at = time.time()
                self._elect(first, time.time(), "electionTimeout")
        self._save_state()
