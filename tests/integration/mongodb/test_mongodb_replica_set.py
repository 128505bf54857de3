"""MongoConnector against the replica-set simulator, with pymongo doing real wire-protocol I/O.

What the double is: one mockupdb server per member (primary at the primary site, a priority-0
DR member, an arbiter), answering ``hello``/``replSetGetStatus`` with MongoDB 7.0-shaped
documents and authenticating with real SCRAM-SHA-256 (so wrong passwords and missing roles fail
the way a real ``mongod`` fails them). What it is not: there is no storage, no oplog and no
election protocol; optimes follow the wall clock and faults are scripted.

``primary_down`` is reported as replication BROKEN (the DR member, still visible, says the set
has no primary) with the primary side CONNECTION_ERROR; see docs/connectors/mongodb.md.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import pymongo
import pytest
from bson import Timestamp

from connectors.contract import CAPABILITY_NAMES, Outcome, Replication, Role, Support
from connectors.platforms.mongodb import MongoConnector
from connectors.registry import get_connector

pytestmark = pytest.mark.integration

MARKER = re.compile(r"^\d{10}:\d+/\d+$")
connector = MongoConnector()


def _client(member: str, creds: dict[str, str]) -> pymongo.MongoClient:
    return pymongo.MongoClient(
        member,
        directConnection=True,
        serverSelectionTimeoutMS=2000,
        socketTimeoutMS=2000,
        username=creds["username"],
        password=creds["password"],
        authSource="admin",
    )


def test_registry_gives_the_mongodb_connector() -> None:
    assert isinstance(get_connector("mongodb"), MongoConnector)


def test_capabilities_name_all_seven() -> None:
    caps = connector.capabilities()
    assert set(caps) == set(CAPABILITY_NAMES)
    for name in ("switchover", "failover", "failback"):
        assert caps[name].support == Support.CONDITIONAL
        assert "clusterManager" in caps[name].reason
    assert caps["drill"].support == Support.CONDITIONAL
    assert "readWrite" in caps["drill"].reason
    assert all(c.reason for c in caps.values() if c.support != Support.YES)


def test_documents_are_shaped_like_a_real_replica_set(mongo_lab, sim) -> None:
    conn, creds = mongo_lab["connection"], mongo_lab["credentials"]["monitor"]
    with _client(conn["primary_member"], creds) as client:
        hello = client.admin.command("hello")
        status = client.admin.command("replSetGetStatus")
        build = client.admin.command("buildInfo")
    assert hello["isWritablePrimary"] is True and hello["secondary"] is False
    assert hello["setName"] == conn["replica_set"] and hello["me"] == conn["primary_member"]
    assert hello["maxWireVersion"] == 21
    assert hello["passives"] == [conn["dr_member"]]  # priority 0: listed as a passive
    assert str(hello["electionId"]).startswith("7fffffff")
    assert set(hello["topologyVersion"]) == {"processId", "counter"}
    assert build["version"].startswith("7.0")

    assert status["myState"] == 1 and isinstance(status["term"], int)
    assert status["heartbeatIntervalMillis"] == 2000
    for key in ("lastCommittedOpTime", "appliedOpTime", "durableOpTime"):
        assert isinstance(status["optimes"][key]["ts"], Timestamp)
    members = {m["name"]: m for m in status["members"]}
    me, dr = members[conn["primary_member"]], members[conn["dr_member"]]
    assert me["self"] is True and me["stateStr"] == "PRIMARY" and "electionDate" in me
    assert "optimeDurable" not in me and "lastHeartbeat" not in me  # as real self entries
    assert dr["stateStr"] == "SECONDARY" and dr["health"] == 1.0
    for key in ("optime", "optimeDurable", "optimeDate", "optimeDurableDate", "lastHeartbeat"):
        assert key in dr
    assert isinstance(dr["optimeDate"], datetime) and isinstance(dr["pingMs"], int)
    assert dr["syncSourceHost"] == conn["primary_member"]
    arbiter = next(m for m in status["members"] if m["stateStr"] == "ARBITER")
    assert "optime" not in arbiter


def test_healthy_set_is_streaming_with_no_lag(target) -> None:
    started = time.monotonic()
    obs = connector.observe(target)
    assert time.monotonic() - started < 1.0
    assert (obs.primary.outcome, obs.dr.outcome) == (Outcome.OK, Outcome.OK)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.replication == Replication.STREAMING
    assert obs.lag_seconds is not None and obs.lag_seconds <= 1.0
    assert obs.lag_bytes is None
    assert obs.marker_available and MARKER.match(obs.primary_marker) and MARKER.match(obs.dr_marker)
    assert obs.primary.healthy and obs.dr.healthy
    assert set(obs.raw) == {"primary", "dr"}


def test_no_credentials_in_the_observation(mongo_lab, target) -> None:
    obs = connector.observe(target)
    password = mongo_lab["credentials"]["monitor"]["password"]
    assert password not in repr(obs)


def test_lag_fault_makes_lag_grow_while_the_dr_marker_stands_still(sim, target) -> None:
    sim.inject("lag")
    first = connector.observe(target)
    time.sleep(2.2)
    second = connector.observe(target)
    assert second.replication == Replication.STREAMING  # MongoDB cannot tell a stalled applier
    assert second.lag_seconds >= 2.0 and second.lag_seconds >= first.lag_seconds + 1.0
    assert second.dr_marker == first.dr_marker != second.primary_marker


def test_pause_looks_like_lag_to_a_monitor(mongo_lab, sim, target) -> None:
    sim.inject("pause")
    time.sleep(1.2)
    obs = connector.observe(target)
    dr_view = next(
        m
        for m in obs.raw["primary"]["replSetGetStatus"]["members"]
        if m["name"] == mongo_lab["connection"]["dr_member"]
    )
    assert (dr_view["stateStr"], dr_view["health"]) == ("SECONDARY", 1.0)
    assert obs.replication == Replication.STREAMING and obs.lag_seconds >= 1.0


def test_standby_down_is_a_dr_connection_error_with_the_primary_still_seen(sim, target) -> None:
    sim.inject("standby_down")
    started = time.monotonic()
    obs = connector.observe(target)
    assert time.monotonic() - started < 1.0  # a refused port is reported at once
    assert obs.dr.outcome == Outcome.CONNECTION_ERROR and "refused" in obs.dr.error.lower()
    assert obs.primary.outcome == Outcome.OK and obs.primary.role == Role.PRIMARY
    assert obs.replication == Replication.UNKNOWN
    assert obs.primary_marker and obs.dr_marker is None and obs.lag_seconds is None
    assert any("not reachable/healthy" in note for note in obs.notes)


def test_primary_down_leaves_no_primary_and_is_broken(mongo_lab, sim, target) -> None:
    sim.inject("primary_down")
    obs = connector.observe(target)
    assert obs.primary.outcome == Outcome.CONNECTION_ERROR
    assert obs.dr.outcome == Outcome.OK and obs.dr.role == Role.STANDBY
    assert obs.replication == Replication.BROKEN
    assert any("no member" in note for note in obs.notes)
    members = obs.raw["dr"]["replSetGetStatus"]["members"]
    old = next(m for m in members if m["name"] == mongo_lab["connection"]["primary_member"])
    assert (old["health"], old["stateStr"]) == (0.0, "(not reachable/healthy)")
    assert not any(m["stateStr"] == "PRIMARY" for m in members)


def test_heal_after_primary_down_elects_again_in_a_new_term(sim, target) -> None:
    before = connector.observe(target)
    sim.inject("primary_down")
    sim.inject("heal")
    after = connector.observe(target)
    assert after.replication == Replication.STREAMING and after.lag_seconds <= 1.0
    assert after.primary.details["term"] == before.primary.details["term"] + 1


def test_timeout_is_reported_within_the_timeout(sim, target_for) -> None:
    sim.inject("timeout")
    started = time.monotonic()
    obs = connector.observe(target_for(timeout=1.5))
    elapsed = time.monotonic() - started
    assert obs.dr.outcome == Outcome.TIMEOUT
    assert 1.0 <= elapsed <= 3.0
    assert obs.primary.outcome == Outcome.OK and obs.replication == Replication.UNKNOWN


def test_recovering_dr_member_means_replication_stopped(sim, target) -> None:
    sim.inject("recovering")
    obs = connector.observe(target)
    assert obs.dr.outcome == Outcome.OK and obs.dr.role == Role.OTHER
    assert obs.replication == Replication.STOPPED


def test_wrong_password_is_auth_failed(mongo_lab, target_for) -> None:
    creds = {"username": mongo_lab["credentials"]["monitor"]["username"], "password": "wrong-pw"}
    obs = connector.observe(target_for(credentials=creds))
    assert obs.primary.outcome == obs.dr.outcome == Outcome.AUTH_FAILED
    assert "wrong-pw" not in repr(obs)


def test_missing_cluster_monitor_role_is_permission_denied(sim, target_for) -> None:
    sim.add_user("no_roles", "no-roles-pw", ())
    obs = connector.observe(
        target_for(credentials={"username": "no_roles", "password": "no-roles-pw"})
    )
    assert obs.primary.outcome == obs.dr.outcome == Outcome.PERMISSION_DENIED
    assert obs.primary.role == Role.PRIMARY  # hello needs no privilege
    assert obs.replication == Replication.UNKNOWN


def test_every_command_is_recorded_for_execution_checks(mongo_lab, sim) -> None:
    conn, creds = mongo_lab["connection"], mongo_lab["credentials"]["execute"]
    with (
        _client(conn["primary_member"], creds) as client,
        pytest.raises(pymongo.errors.OperationFailure) as failure,
    ):
        client.admin.command({"replSetMaintenance": True})
    assert failure.value.code == 59  # not simulated: recorded and refused
    received = sim.received_commands("replSetMaintenance")
    assert received and received[-1]["doc"]["replSetMaintenance"] is True
    assert received[-1]["user"] == creds["username"]
    assert all(c["doc"].get("payload") in (None, "<redacted>") for c in sim.received_commands())
