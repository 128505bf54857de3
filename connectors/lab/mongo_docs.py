"""Documents the MongoDB replica-set simulator answers with, shaped like MongoDB 7.0's.

Pure functions over a snapshot of the simulated set (no sockets, no clock reads), so the shapes
can be checked on their own. Field names, types and the presence or absence of fields follow a
real ``mongod`` 7.0 (maxWireVersion 21): for instance the ``self`` entry of ``replSetGetStatus``
carries no ``optimeDurable``/``lastHeartbeat``, an unreachable member shows optime
``Timestamp(0, 0)``/term -1 and the epoch as its dates, ``health`` is a double, priority-0
members are listed under ``passives`` in ``hello``, and arbiters have no optimes at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import Int64, ObjectId, Timestamp

PRIMARY, SECONDARY, RECOVERING, ARBITER, DOWN = 1, 2, 3, 7, 8
STATE_STR = {
    0: "STARTUP",
    PRIMARY: "PRIMARY",
    SECONDARY: "SECONDARY",
    RECOVERING: "RECOVERING",
    5: "STARTUP2",
    6: "UNKNOWN",
    ARBITER: "ARBITER",
    DOWN: "DOWN",
    9: "ROLLBACK",
    10: "REMOVED",
}
NOT_REACHABLE = "(not reachable/healthy)"
VERSION = "7.0.14"
MAX_WIRE_VERSION = 21  # MongoDB 7.0; pymongo 4.x refuses the mockupdb default of 6
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO_OPTIME = {"ts": Timestamp(0, 0), "t": Int64(-1)}


@dataclass
class Member:
    """One member as the simulator currently models it."""

    index: int
    name: str  # "127.0.0.1:port", exactly as in the replica set configuration
    site: str  # "primary" or "dr"
    arbiter: bool
    priority: float
    process_id: ObjectId
    started_at: float
    state: int  # PRIMARY, SECONDARY, RECOVERING, ARBITER
    reachable: bool = True  # answers heartbeats from the other members
    down_since: float | None = None
    down_reason: str = ""  # lastHeartbeatMessage the others show while it is unreachable
    applied: float | None = None  # wall-clock seconds of the last applied write
    sync_source: int | None = None
    votes: int = 1  # 0 or 1, as in the replica set configuration


@dataclass(frozen=True)
class ElectionMetrics:
    """What the latest election left behind, for ``electionCandidateMetrics`` on the winner and
    ``electionParticipantMetrics`` on the members that voted (MongoDB 4.2.1+)."""

    candidate: int  # member index of the winner
    term: int
    reason: str  # lastElectionReason, e.g. "stepUpRequestSkipDryRun", "electionTimeout"
    at: float  # election time
    priority: float  # the candidate's priority at the election
    votes_needed: int
    last_committed: float | None
    applied: dict[int, float | None]  # every reachable data member's applied time at the election
    voters: tuple[int, ...]  # members that voted for the candidate (itself excluded)


@dataclass
class SetSnapshot:
    set_name: str
    replica_set_id: ObjectId
    now: float
    members: list[Member]
    elections: list[tuple[float, int]]  # (election time, term), oldest first
    committed: float | None  # majority-committed write time
    topology_counter: int
    connection_ids: dict[int, int] = field(default_factory=dict)
    config_version: int = 1
    election: ElectionMetrics | None = None

    @property
    def term(self) -> int:
        return self.elections[-1][1]

    @property
    def primary(self) -> Member | None:
        for member in self.members:
            if member.state == PRIMARY and member.reachable:
                return member
        return None

    def term_at(self, when: float) -> int:
        """The term a write made at ``when`` carries (the election that preceded it)."""
        term = self.elections[0][1]
        for elected_at, elected_term in self.elections:
            if elected_at <= when:
                term = elected_term
        return term


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def timestamp(seconds: float) -> Timestamp:
    # The increment counts writes within a second; with writes happening all the time, the
    # millisecond keeps it increasing within a second.
    return Timestamp(int(seconds), int((seconds % 1) * 1000) + 1)


def optime(snap: SetSnapshot, seconds: float | None) -> dict[str, Any]:
    if seconds is None:
        return dict(_ZERO_OPTIME)
    return {"ts": timestamp(seconds), "t": Int64(snap.term_at(seconds))}


def _optime_date(seconds: float | None) -> datetime:
    # optimeDate is the timestamp's seconds part: second resolution, as in real output.
    return _dt(int(seconds)) if seconds is not None else _EPOCH


def _cluster_time(snap: SetSnapshot) -> dict[str, Any]:
    return {
        "$clusterTime": {
            "clusterTime": timestamp(snap.now),
            # Unsigned cluster time looks like this on a server without keyFile-signed keys.
            "signature": {"hash": b"\x00" * 20, "keyId": Int64(0)},
        },
        "operationTime": timestamp(snap.committed or snap.now),
    }


def hello(snap: SetSnapshot, me: Member, legacy: bool, hello_ok: bool) -> dict[str, Any]:
    data_members = [m for m in snap.members if not m.arbiter]
    primary = snap.primary
    is_primary = primary is me
    doc: dict[str, Any] = {
        "topologyVersion": {"processId": me.process_id, "counter": Int64(snap.topology_counter)},
        "hosts": [m.name for m in data_members if m.priority > 0],
        "passives": [m.name for m in data_members if m.priority == 0],
        "arbiters": [m.name for m in snap.members if m.arbiter],
        "setName": snap.set_name,
        "setVersion": snap.config_version,
        ("ismaster" if legacy else "isWritablePrimary"): is_primary,
        "secondary": me.state == SECONDARY,
    }
    if not doc["passives"]:
        del doc["passives"]
    if not doc["arbiters"]:
        del doc["arbiters"]
    if primary is not None:
        doc["primary"] = primary.name
    if me.priority == 0 and not me.arbiter:
        doc["passive"] = True
    if me.arbiter:
        doc["arbiterOnly"] = True
    doc["me"] = me.name
    if is_primary:
        doc["electionId"] = ObjectId(f"7fffffff{snap.term:016x}")
    if not me.arbiter:
        applied = optime(snap, me.applied)
        committed = optime(snap, snap.committed)
        doc["lastWrite"] = {
            "opTime": applied,
            "lastWriteDate": _optime_date(me.applied),
            "majorityOpTime": committed,
            "majorityWriteDate": _optime_date(snap.committed),
        }
    doc.update(
        {
            "maxBsonObjectSize": 16777216,
            "maxMessageSizeBytes": 48000000,
            "maxWriteBatchSize": 100000,
            "localTime": _dt(snap.now),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": snap.connection_ids.get(me.index, 1),
            "minWireVersion": 0,
            "maxWireVersion": MAX_WIRE_VERSION,
            "readOnly": False,
        }
    )
    if hello_ok:
        doc["helloOk"] = True
    doc["ok"] = 1.0
    doc.update(_cluster_time(snap))
    return doc


def _member_entry(snap: SetSnapshot, viewer: Member, m: Member) -> dict[str, Any]:
    uptime = int(snap.now - max(m.started_at, viewer.started_at))
    if m is viewer:
        entry: dict[str, Any] = {
            "_id": m.index,
            "name": m.name,
            "health": 1.0,
            "state": m.state,
            "stateStr": STATE_STR[m.state],
            "uptime": int(snap.now - m.started_at),
        }
        if not m.arbiter:
            entry["optime"] = optime(snap, m.applied)
            entry["optimeDate"] = _optime_date(m.applied)
            entry["lastAppliedWallTime"] = _dt(m.applied or 0)
            entry["lastDurableWallTime"] = _dt(m.applied or 0)
        entry.update(_sync_fields(snap, m))
        if m.state == PRIMARY:
            entry.update(_election_fields(snap))
        entry.update({"configVersion": snap.config_version, "configTerm": snap.term, "self": True})
        entry["lastHeartbeatMessage"] = ""
        return entry
    if not m.reachable:
        since = m.down_since or snap.now
        return {
            "_id": m.index,
            "name": m.name,
            "health": 0.0,
            "state": DOWN,
            "stateStr": NOT_REACHABLE,
            "uptime": 0,
            "optime": dict(_ZERO_OPTIME),
            "optimeDurable": dict(_ZERO_OPTIME),
            "optimeDate": _EPOCH,
            "optimeDurableDate": _EPOCH,
            "lastAppliedWallTime": _EPOCH,
            "lastDurableWallTime": _EPOCH,
            "lastHeartbeat": _dt(snap.now - 0.5),
            "lastHeartbeatRecv": _dt(since),
            "pingMs": Int64(0),
            "lastHeartbeatMessage": m.down_reason,
            "syncSourceHost": "",
            "syncSourceId": -1,
            "infoMessage": "",
            "configVersion": -1,
            "configTerm": -1,
        }
    entry = {
        "_id": m.index,
        "name": m.name,
        "health": 1.0,
        "state": m.state,
        "stateStr": STATE_STR[m.state],
        "uptime": uptime,
    }
    if not m.arbiter:
        entry.update(
            {
                "optime": optime(snap, m.applied),
                "optimeDurable": optime(snap, m.applied),
                "optimeDate": _optime_date(m.applied),
                "optimeDurableDate": _optime_date(m.applied),
                "lastAppliedWallTime": _dt(m.applied or 0),
                "lastDurableWallTime": _dt(m.applied or 0),
            }
        )
    entry.update(
        {
            # Heartbeats go out every 2 s; the last ones are somewhat in the past.
            "lastHeartbeat": _dt(snap.now - 0.8),
            "lastHeartbeatRecv": _dt(snap.now - 1.1),
            "pingMs": Int64(0),
            "lastHeartbeatMessage": "",
        }
    )
    entry.update(_sync_fields(snap, m))
    if m.state == PRIMARY:
        entry.update(_election_fields(snap))
    entry.update({"configVersion": snap.config_version, "configTerm": snap.term})
    return entry


def _sync_fields(snap: SetSnapshot, m: Member) -> dict[str, Any]:
    source = snap.members[m.sync_source] if m.sync_source is not None else None
    return {
        "syncSourceHost": source.name if source else "",
        "syncSourceId": source.index if source else -1,
        "infoMessage": "",
    }


def _election_fields(snap: SetSnapshot) -> dict[str, Any]:
    elected_at = snap.elections[-1][0]
    return {"electionTime": timestamp(elected_at), "electionDate": _dt(int(elected_at))}


def _election_metrics(snap: SetSnapshot, viewer: Member) -> dict[str, Any]:
    """``electionCandidateMetrics`` on the primary that won the latest election and
    ``electionParticipantMetrics`` on a member that voted in it, as MongoDB 7.0 shows them."""
    e = snap.election
    if e is None:
        return {}
    if viewer.index == e.candidate and viewer.state == PRIMARY:
        return {
            "electionCandidateMetrics": {
                "lastElectionReason": e.reason,
                "lastElectionDate": _dt(e.at),
                "electionTerm": Int64(e.term),
                "lastCommittedOpTimeAtElection": optime(snap, e.last_committed),
                "lastSeenOpTimeAtElection": optime(snap, e.applied.get(e.candidate)),
                "numVotesNeeded": e.votes_needed,
                "priorityAtElection": float(e.priority),
                "electionTimeoutMillis": Int64(10000),
                "newTermStartDate": _dt(e.at),
                "wMajorityWriteAvailabilityDate": _dt(e.at),
            }
        }
    if viewer.index in e.voters:
        known = [a for a in e.applied.values() if a is not None]
        return {
            "electionParticipantMetrics": {
                "votedForCandidate": True,
                "electionTerm": Int64(e.term),
                "lastVoteDate": _dt(e.at),
                "electionCandidateMemberId": e.candidate,
                "voteReason": "",
                "lastAppliedOpTimeAtElection": optime(snap, e.applied.get(viewer.index)),
                "maxAppliedOpTimeInSet": optime(snap, max(known) if known else None),
                "priorityAtElection": float(viewer.priority),
            }
        }
    return {}


def repl_set_get_status(snap: SetSnapshot, viewer: Member) -> dict[str, Any]:
    voting = len([m for m in snap.members if m.votes])
    writable = len([m for m in snap.members if not m.arbiter and m.votes])
    applied = None if viewer.arbiter else viewer.applied
    doc: dict[str, Any] = {
        "set": snap.set_name,
        "date": _dt(snap.now),
        "myState": viewer.state,
        "term": Int64(snap.term),
    }
    doc.update(_sync_fields(snap, viewer))
    del doc["infoMessage"]
    doc.update(
        {
            "heartbeatIntervalMillis": Int64(2000),
            "majorityVoteCount": voting // 2 + 1,
            "writeMajorityCount": min(voting // 2 + 1, writable),
            "votingMembersCount": voting,
            "writableVotingMembersCount": writable,
            "optimes": {
                "lastCommittedOpTime": optime(snap, snap.committed),
                "lastCommittedWallTime": _dt(snap.committed or 0),
                "readConcernMajorityOpTime": optime(snap, snap.committed),
                "appliedOpTime": optime(snap, applied),
                "durableOpTime": optime(snap, applied),
                "lastAppliedWallTime": _dt(applied or 0),
                "lastDurableWallTime": _dt(applied or 0),
            },
            "lastStableRecoveryTimestamp": timestamp(snap.committed or 0),
            **_election_metrics(snap, viewer),
            "members": [_member_entry(snap, viewer, m) for m in snap.members],
            "ok": 1.0,
        }
    )
    doc.update(_cluster_time(snap))
    return doc


def repl_set_get_config(snap: SetSnapshot) -> dict[str, Any]:
    members = [
        {
            "_id": m.index,
            "host": m.name,
            "arbiterOnly": m.arbiter,
            "buildIndexes": True,
            "hidden": False,
            "priority": 0 if m.arbiter else m.priority,
            "tags": {} if m.arbiter else {"site": m.site},
            "secondaryDelaySecs": Int64(0),
            "votes": m.votes,
        }
        for m in snap.members
    ]
    config = {
        "_id": snap.set_name,
        "version": snap.config_version,
        "term": snap.term,
        "members": members,
        "protocolVersion": Int64(1),
        "writeConcernMajorityJournalDefault": True,
        "settings": {
            "chainingAllowed": True,
            "heartbeatIntervalMillis": 2000,
            "heartbeatTimeoutSecs": 10,
            "electionTimeoutMillis": 10000,
            "catchUpTimeoutMillis": -1,
            "catchUpTakeoverDelayMillis": 30000,
            "getLastErrorModes": {},
            "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
            "replicaSetId": snap.replica_set_id,
        },
    }
    return {"config": config, "ok": 1.0, **_cluster_time(snap)}


def build_info() -> dict[str, Any]:
    major, minor, patch = (int(p) for p in VERSION.split("."))
    return {
        "version": VERSION,
        "gitVersion": "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188",
        "modules": [],
        "allocator": "tcmalloc",
        "javascriptEngine": "mozjs",
        "sysInfo": "deprecated",
        "versionArray": [major, minor, patch, 0],
        "bits": 64,
        "debug": False,
        "maxBsonObjectSize": 16777216,
        "storageEngines": ["devnull", "inMemory", "wiredTiger"],
        "ok": 1.0,
    }


def command_error(code: int, code_name: str, errmsg: str) -> dict[str, Any]:
    return {"ok": 0.0, "errmsg": errmsg, "code": code, "codeName": code_name}
