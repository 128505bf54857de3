"""MssqlConnector against the AG simulator, with pyodbc + unixODBC + FreeTDS doing real TDS I/O.

What the double is: one scripted TDS server per replica (pysqlbridge's protocol layer and SQL
engine) on 127.0.0.1, answering the connector's joins over ``sys.availability_*`` and
``sys.dm_hadr_*`` with rows shaped like SQL Server's (same column names and SQL types: LSNs as
numeric(25,0), times as datetime, ids as uniqueidentifier), SQL logins checked for real (a wrong
password is TDS error 18456) and VIEW SERVER STATE enforced (error 300/297). What it is not:
there is no storage engine, no log and no WSFC; LSNs and commit times follow the wall clock and
faults are scripted (see docs/connectors/mssql.md).

``primary_down`` is reported as replication BROKEN (the DR replica, still visible, is RESOLVING:
no replica is primary) with the primary side CONNECTION_ERROR, as for MongoDB.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from connectors.contract import (
    CAPABILITY_NAMES,
    HeartbeatConfig,
    Outcome,
    Replication,
    Role,
    Support,
)
from connectors.platforms.mssql import MssqlConnector, ag_literal, connection_string
from connectors.registry import get_connector

from .conftest import TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

connector = MssqlConnector()


def test_registry_gives_the_mssql_connector() -> None:
    assert isinstance(get_connector("mssql"), MssqlConnector)


def test_capabilities_name_all_seven(target, target_for) -> None:
    caps = connector.capabilities()
    assert set(caps) == set(CAPABILITY_NAMES)
    assert caps["monitor"].support == caps["replication_marker"].support == Support.YES
    for name in ("switchover", "failover", "failback", "heartbeat"):
        assert caps[name].support == Support.CONDITIONAL and caps[name].reason
    # The drill is a read-only LSN probe: it works on any AG, and says what it proves.
    assert caps["drill"].support == Support.YES and "read-only" in caps["drill"].reason
    assert "synchronous-commit" in caps["switchover"].reason
    assert "SYNCHRONIZED" in caps["switchover"].reason
    assert "data loss" in caps["failover"].reason
    with_heartbeat = target_for(heartbeat=HeartbeatConfig("bc_heartbeat"))
    assert connector.capabilities(with_heartbeat)["heartbeat"].support == Support.YES


def test_healthy_group_streams_with_no_lag(target) -> None:
    started = time.monotonic()
    obs = connector.observe(target)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert obs.replication == Replication.STREAMING, obs.notes
    assert (obs.primary.outcome, obs.dr.outcome) == (Outcome.OK, Outcome.OK)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.primary.healthy and obs.dr.healthy
    assert obs.lag_seconds is not None and obs.lag_seconds < 0.1
    assert obs.lag_bytes == 0
    # Both markers come from the primary's view at one instant: in sync they are equal.
    assert obs.marker_available and obs.primary_marker == obs.dr_marker
    assert obs.primary_marker.isdigit() and len(obs.primary_marker) >= 17
    details = obs.primary.details
    assert details["replica"] == "SQLPRI" and details["server_name"] == "SQLPRI"
    assert details["availability_mode"] == "SYNCHRONOUS_COMMIT"
    assert details["hadr_enabled"] == 1 and details["database"] == "appdb"
    assert obs.dr.details["databases"]["appdb"]["synchronization_state"] == "SYNCHRONIZED"
    assert obs.raw["estimated_data_loss"]["per_database"]["appdb"]["lag_seconds"] < 0.1
    json.dumps(obs.raw)  # JSON-safe for storage
    assert obs.notes == []


def test_markers_and_commit_times_advance_on_the_primary(target) -> None:
    first = connector.observe(target)
    time.sleep(1.1)
    second = connector.observe(target)
    assert int(second.primary_marker) > int(first.primary_marker)
    t1 = first.primary.details["databases"]["appdb"]["last_commit_time"]
    t2 = second.primary.details["databases"]["appdb"]["last_commit_time"]
    assert t2 > t1


def test_lag_fault_grows_lag_seconds_while_streaming(sim, target) -> None:
    sim.inject("lag")
    time.sleep(0.1)  # at 64 KB/s, under 16 ms of frozen redo is still 0 KB queued
    first = connector.observe(target)
    time.sleep(1.5)
    second = connector.observe(target)
    assert second.replication == Replication.STREAMING  # redo lag: still SYNCHRONIZED
    assert second.lag_seconds > first.lag_seconds + 1.0, (first.lag_seconds, second.lag_seconds)
    assert second.lag_bytes > first.lag_bytes > 0
    per_db = second.raw["estimated_data_loss"]["per_database"]["appdb"]
    assert per_db["redo_queue_kb"] > 0 and per_db["log_send_queue_kb"] == 0
    assert per_db["secondary_lag_seconds"] >= 1
    # Redo stopped on the DR replica: its marker is frozen while the primary's moves on.
    assert second.dr_marker == first.dr_marker
    assert int(second.primary_marker) > int(first.primary_marker)


def test_pause_is_reported_as_paused(sim, target) -> None:
    sim.inject("pause")
    time.sleep(0.3)
    obs = connector.observe(target)
    assert obs.replication == Replication.PAUSED
    assert any("SUSPEND_FROM_USER" in note for note in obs.notes), obs.notes
    db = obs.dr.details["databases"]["appdb"]
    assert db["is_suspended"] is True and db["synchronization_state"] == "NOT SYNCHRONIZING"
    assert obs.dr.healthy is False and obs.lag_seconds > 0


def test_standby_down_keeps_the_primary_observed(sim, target) -> None:
    sim.inject("standby_down")
    obs = connector.observe(target)
    assert obs.dr.outcome == Outcome.CONNECTION_ERROR
    assert "08S01" in obs.dr.error and obs.dr.endpoint in obs.dr.error
    assert obs.primary.outcome == Outcome.OK and obs.primary.role == Role.PRIMARY
    assert obs.replication == Replication.UNKNOWN
    # The primary's own view reports the lost replica.
    rows = {r["replica_server_name"]: r for r in obs.raw["primary"]["replicas"]}
    assert rows["SQLDR"]["connected_state_desc"] == "DISCONNECTED"
    assert rows["SQLDR"]["synchronization_health_desc"] == "NOT_HEALTHY"
    assert "10061" in rows["SQLDR"]["last_connect_error_description"]
    assert any("SQLDR is DISCONNECTED" in note for note in obs.notes), obs.notes
    assert obs.dr_marker is None and not obs.marker_available  # no stale marker as current


def test_primary_down_leaves_the_dr_replica_resolving(sim, target) -> None:
    sim.inject("primary_down")
    obs = connector.observe(target)
    assert obs.primary.outcome == Outcome.CONNECTION_ERROR
    assert obs.dr.outcome == Outcome.OK
    assert obs.dr.role == Role.OTHER and obs.dr.details["role"] == "RESOLVING"
    assert obs.dr.details["connected_state"] == "DISCONNECTED"
    assert obs.replication == Replication.BROKEN
    assert any("RESOLVING" in note for note in obs.notes), obs.notes
    assert obs.lag_seconds is None and obs.primary_marker is None


def test_a_hung_replica_times_out_without_hanging(sim, target) -> None:
    sim.inject("timeout")
    started = time.monotonic()
    obs = connector.observe(target)
    elapsed = time.monotonic() - started
    assert obs.dr.outcome == Outcome.TIMEOUT, obs.dr.error
    assert "HYT00" in obs.dr.error
    assert obs.primary.outcome == Outcome.OK
    assert obs.replication == Replication.UNKNOWN
    assert TIMEOUT_SECONDS - 0.2 < elapsed < TIMEOUT_SECONDS + 1.5, elapsed


def test_split_brain_is_broken(sim, target) -> None:
    sim.inject("split_brain")
    obs = connector.observe(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.PRIMARY)
    assert obs.replication == Replication.BROKEN
    assert any("more than one PRIMARY" in note for note in obs.notes)


def test_heal_restores_streaming(sim, target) -> None:
    for fault in ("lag", "pause", "standby_down"):
        sim.inject(fault)
    time.sleep(0.2)
    assert connector.observe(target).replication == Replication.UNKNOWN
    sim.inject("heal")
    obs = connector.observe(target)
    assert obs.replication == Replication.STREAMING and obs.lag_seconds < 0.1


def test_wrong_password_is_auth_failed_and_never_echoed(target_for) -> None:
    secret = "Wrong;Pass}word-123"
    obs = connector.observe(target_for({"username": "bc_monitor", "password": secret}))
    for side in (obs.primary, obs.dr):
        assert side.outcome == Outcome.AUTH_FAILED
        assert "18456" in side.error and "bc_monitor" in side.error
    text = json.dumps([obs.primary.error, obs.dr.error, obs.raw, obs.notes])
    assert secret not in text and "PWD" not in text


def test_missing_view_server_state_is_permission_denied(sim, target_for) -> None:
    sim.add_login("bc_nostate", "No-State-Pass-1", ("VIEW ANY DEFINITION",))
    obs = connector.observe(target_for({"username": "bc_nostate", "password": "No-State-Pass-1"}))
    assert obs.primary.outcome == obs.dr.outcome == Outcome.PERMISSION_DENIED
    assert "297" in obs.primary.error


def test_missing_view_any_definition_hides_the_group(sim, target_for) -> None:
    sim.add_login("bc_nodef", "No-Def-Pass-1", ("VIEW SERVER STATE",))
    obs = connector.observe(target_for({"username": "bc_nodef", "password": "No-Def-Pass-1"}))
    assert obs.primary.outcome == Outcome.ERROR
    assert "VIEW ANY DEFINITION" in obs.primary.error


def test_password_with_odbc_delimiters_is_quoted(sim, target_for) -> None:
    password = "a;b}c{d=e}"
    sim.add_login("bc_odd", password, ("VIEW SERVER STATE", "VIEW ANY DEFINITION"))
    obs = connector.observe(target_for({"username": "bc_odd", "password": password}))
    assert obs.replication == Replication.STREAMING, (obs.primary.error, obs.dr.error)


def test_heartbeat_is_read_on_the_dr_replica(sim, target_for) -> None:
    target = target_for(heartbeat=HeartbeatConfig("bc_heartbeat", "ts"))
    obs = connector.observe(target)
    assert obs.heartbeat_at is not None
    # observed_at is when observe() began; the heartbeat is read a little later and may hold a
    # second that started after it (the job stamps whole seconds).
    assert -1.0 < (obs.observed_at - obs.heartbeat_at).total_seconds() < 2.5
    sim.inject("lag")
    time.sleep(2.2)
    late = connector.observe(target)
    assert (late.observed_at - late.heartbeat_at).total_seconds() > 2


def test_unreadable_heartbeat_is_a_note(target_for) -> None:
    obs = connector.observe(target_for(heartbeat=HeartbeatConfig("no_such_table", "ts")))
    assert obs.heartbeat_at is None and obs.replication == Replication.STREAMING
    assert any("heartbeat not readable" in note for note in obs.notes), obs.notes


def test_configuration_errors_need_no_network(target_for) -> None:
    obs = connector.observe(target_for(availability_group="ag'; DROP TABLE x--"))
    assert obs.primary.outcome == obs.dr.outcome == Outcome.NOT_CONFIGURED
    obs = connector.observe(target_for(dr_server=""))
    assert obs.dr.outcome == Outcome.NOT_CONFIGURED and obs.primary.outcome == Outcome.OK
    obs = connector.observe(target_for(driver="No Such ODBC Driver"))
    assert obs.primary.outcome == Outcome.NOT_CONFIGURED, obs.primary.error
    obs = connector.observe(target_for(availability_group="other-ag"))
    assert obs.primary.outcome == Outcome.ERROR and "not found" in obs.primary.error


def test_wrong_replica_name_is_an_error(target_for) -> None:
    obs = connector.observe(target_for(dr_replica="SQLPRI"))
    assert obs.dr.outcome == Outcome.ERROR and "expected 'SQLPRI'" in obs.dr.error


def test_identifier_and_connection_string_rules() -> None:
    assert ag_literal("bc-ag") == "N'bc-ag'"
    for bad in ("", "a'b", "a]b", "a b", "x" * 200):
        with pytest.raises(ValueError):
            ag_literal(bad)
    conn = {"primary_server": "db1", "primary_port": 1433, "driver": "FreeTDS", "encrypt": True}
    text = connection_string(conn, "primary", {"username": "u", "password": "p;w}"})
    assert "DRIVER={FreeTDS};SERVER=db1;PORT=1433;TDS_Version=7.4;Encryption=require;" in text
    assert "PWD={p;w}}" in text and "DATABASE=master" in text  # FreeTDS: braces, no doubling
    with pytest.raises(ValueError, match="FreeTDS"):
        connection_string(conn, "primary", {"username": "u", "password": "a};b"})
    ms_conn = {**conn, "driver": "ODBC Driver 18 for SQL Server"}
    ms = connection_string(ms_conn, "primary", {"username": "u", "password": "p;w}"})
    assert "SERVER=tcp:db1,1433;Encrypt=yes" in ms and "PWD={p;w}}}" in ms  # ODBC doubling


def test_a_driver_call_that_never_returns_cannot_hold_observe(target_for) -> None:
    released = threading.Event()

    class Stuck(MssqlConnector):
        def _observe_side(self, site, conn, creds, target):
            if site == "dr":
                released.wait(30)  # an ODBC call that ignores its timeouts
            return super()._observe_side(site, conn, creds, target)

    started = time.monotonic()
    try:
        obs = Stuck().observe(target_for(timeout=1))
    finally:
        released.set()
    elapsed = time.monotonic() - started
    assert obs.dr.outcome == Outcome.TIMEOUT and "no answer within 4 s" in obs.dr.error
    assert obs.primary.outcome == Outcome.OK
    assert 3.5 < elapsed < 5.5, elapsed
