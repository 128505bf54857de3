"""The SQL Server AG double itself, through pyodbc + FreeTDS: DMV shapes, logins, recorded
statements, failover commands and persisted state.

The double speaks real TDS (pysqlbridge's protocol layer) with scripted rows shaped like SQL
Server's ``sys.availability_*`` catalog views and ``sys.dm_hadr_*`` DMVs; these tests pin the
shapes the connector and the execution steps rely on, and the T-SQL failover semantics it
models (planned FAILOVER needs SYNCHRONIZED, a forced one leaves the old primary suspended).
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pyodbc
import pytest

from connectors.contract import Outcome, Replication, Role
from connectors.lab.mssql_sim import MssqlAgSimulator
from connectors.platforms.mssql import MssqlConnector

from .conftest import make_target, sql

pytestmark = pytest.mark.integration

connector = MssqlConnector()
FAILOVER = "ALTER AVAILABILITY GROUP [bc-ag] FAILOVER;"
FORCE = "ALTER AVAILABILITY GROUP [bc-ag] FORCE_FAILOVER_ALLOW_DATA_LOSS;"


def test_server_identity_and_hadr(mssql_lab, sim) -> None:
    for site, name in (("primary", "SQLPRI"), ("dr", "SQLDR")):
        [[row]] = sql(
            mssql_lab,
            site,
            "SELECT @@SERVERNAME AS n, CAST(SERVERPROPERTY('IsHadrEnabled') AS int) AS h",
        )
        assert row == {"n": name, "h": 1}


def test_database_replica_states_are_shaped_like_sql_servers(mssql_lab, sim) -> None:
    [rows] = sql(mssql_lab, "primary", "SELECT * FROM sys.dm_hadr_database_replica_states")
    assert len(rows) == 2  # the primary sees its own row and the secondary's
    mine = next(r for r in rows if r["is_local"])
    theirs = next(r for r in rows if not r["is_local"])
    expected = [
        "database_id", "group_id", "replica_id", "group_database_id", "is_local",
        "is_primary_replica", "synchronization_state", "synchronization_state_desc",
        "is_commit_participant", "synchronization_health", "synchronization_health_desc",
        "database_state", "database_state_desc", "is_suspended", "suspend_reason",
        "suspend_reason_desc", "recovery_lsn", "truncation_lsn", "last_sent_lsn",
        "last_sent_time", "last_received_lsn", "last_received_time", "last_hardened_lsn",
        "last_hardened_time", "last_redone_lsn", "last_redone_time", "log_send_queue_size",
        "log_send_rate", "redo_queue_size", "redo_rate", "filestream_send_rate",
        "end_of_log_lsn", "last_commit_lsn", "last_commit_time", "low_water_mark_for_ghosts",
        "secondary_lag_seconds",
    ]  # fmt: skip
    assert list(mine) == expected
    assert isinstance(theirs["last_hardened_lsn"], Decimal)  # numeric(25,0)
    assert theirs["last_hardened_lsn"] == theirs["last_hardened_lsn"].to_integral_value()
    assert isinstance(theirs["last_commit_time"], datetime.datetime)
    assert isinstance(mine["is_local"], bool) and isinstance(mine["database_id"], int)
    assert len(mine["group_id"]) == 36  # uniqueidentifier
    assert mine["is_primary_replica"] and mine["synchronization_state_desc"] == "SYNCHRONIZED"
    # The primary's own row leaves the secondary-only columns NULL, as SQL Server does.
    assert mine["last_redone_lsn"] is None and mine["log_send_queue_size"] is None
    assert mine["secondary_lag_seconds"] is None and theirs["secondary_lag_seconds"] == 0
    assert theirs["suspend_reason_desc"] is None and theirs["is_suspended"] is False


def test_a_secondary_sees_only_its_own_rows(mssql_lab, sim) -> None:
    replicas, databases = sql(
        mssql_lab,
        "dr",
        "SELECT role_desc, is_local, operational_state_desc FROM "
        "sys.dm_hadr_availability_replica_states; "
        "SELECT is_local, last_redone_lsn, secondary_lag_seconds "
        "FROM sys.dm_hadr_database_replica_states",
    )
    assert replicas == [{"role_desc": "SECONDARY", "is_local": True,
                         "operational_state_desc": "ONLINE"}]  # fmt: skip
    assert len(databases) == 1 and databases[0]["is_local"] is True
    assert databases[0]["secondary_lag_seconds"] is None  # filled in on the primary only
    [replica_rows] = sql(
        mssql_lab, "primary", "SELECT * FROM sys.dm_hadr_availability_replica_states"
    )
    remote = next(r for r in replica_rows if not r["is_local"])
    assert remote["operational_state_desc"] is None  # only known for the local replica


def test_availability_views_join_like_the_real_ones(mssql_lab, sim) -> None:
    [rows] = sql(
        mssql_lab,
        "primary",
        "SELECT ag.name, ar.replica_server_name, ar.availability_mode_desc, "
        "ar.failover_mode_desc, adc.database_name FROM sys.availability_groups ag "
        "JOIN sys.availability_replicas ar ON ar.group_id = ag.group_id "
        "JOIN sys.availability_databases_cluster adc ON adc.group_id = ag.group_id "
        "ORDER BY ar.replica_server_name",
    )
    assert [r["replica_server_name"] for r in rows] == ["SQLDR", "SQLPRI"]
    assert {r["name"] for r in rows} == {"bc-ag"} and {r["database_name"] for r in rows} == {
        "appdb"
    }
    assert {(r["availability_mode_desc"], r["failover_mode_desc"]) for r in rows} == {
        ("SYNCHRONOUS_COMMIT", "MANUAL")
    }


def test_statements_are_recorded_and_carry_no_parameters(mssql_lab, sim) -> None:
    before = len(sim.received_statements())
    connector.observe(make_target(mssql_lab))
    log = sim.statement_log()[before:]
    replicas = {entry["replica"] for entry in log}
    assert replicas == {"SQLPRI", "SQLDR"}
    assert {entry["login"] for entry in log} == {"bc_monitor"}
    dmv = [e["sql"] for e in log if "dm_hadr_database_replica_states" in e["sql"]]
    assert len(dmv) == 2 and all("N'bc-ag'" in text for text in dmv)
    assert not any("sp_prepexec" in e["sql"] or "sp_executesql" in e["sql"] for e in log)
    assert sim.received_statements("SQLDR") == [
        e["sql"] for e in sim.statement_log() if e["replica"] == "SQLDR"
    ]


def test_the_monitoring_login_cannot_fail_over(mssql_lab, sim) -> None:
    with pytest.raises(pyodbc.ProgrammingError) as caught:
        sql(mssql_lab, "dr", FAILOVER)
    assert "15151" in str(caught.value) and "Cannot alter the availability group" in str(
        caught.value
    )
    assert FAILOVER in sim.received_statements("SQLDR")
    assert sim.status()["primary"] == ["SQLPRI"]


def test_planned_failover_swaps_roles_and_failback_restores_them(own_lab) -> None:
    sim: MssqlAgSimulator = own_lab["sim"]
    sql(own_lab, "dr", FAILOVER, purpose="execute")
    assert FAILOVER in sim.received_statements("SQLDR")
    obs = connector.observe(make_target(own_lab))
    assert (obs.primary.role, obs.dr.role) == (Role.STANDBY, Role.PRIMARY)
    assert obs.replication == Replication.STREAMING and obs.lag_seconds < 0.1
    with pytest.raises(pyodbc.Error, match="41122"):  # already the primary
        sql(own_lab, "dr", FAILOVER, purpose="execute")
    sql(own_lab, "primary", "ALTER AVAILABILITY GROUP [bc-ag] FAILOVER", purpose="execute")
    obs = connector.observe(make_target(own_lab))
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)


def test_planned_failover_needs_a_synchronized_secondary(own_lab) -> None:
    sim: MssqlAgSimulator = own_lab["sim"]
    sim.inject("pause")
    with pytest.raises(pyodbc.Error, match="41142"):
        sql(own_lab, "dr", FAILOVER, purpose="execute")
    sql(own_lab, "dr", "ALTER DATABASE [appdb] SET HADR RESUME", purpose="execute")
    assert connector.observe(make_target(own_lab)).replication == Replication.STREAMING


def test_forced_failover_leaves_the_old_primary_suspended(own_lab) -> None:
    sim: MssqlAgSimulator = own_lab["sim"]
    sim.inject("primary_down")
    sql(own_lab, "dr", FORCE, purpose="execute")
    obs = connector.observe(make_target(own_lab))
    assert obs.dr.role == Role.PRIMARY and obs.primary.outcome == Outcome.CONNECTION_ERROR
    sim.inject("heal")  # the old primary restarts as a secondary, its databases suspended
    obs = connector.observe(make_target(own_lab))
    assert (obs.primary.role, obs.dr.role) == (Role.STANDBY, Role.PRIMARY)
    assert obs.replication == Replication.PAUSED
    assert any("SUSPEND_FROM_PARTNER" in note for note in obs.notes), obs.notes
    sql(own_lab, "primary", "ALTER DATABASE [appdb] SET HADR RESUME", purpose="execute")
    assert connector.observe(make_target(own_lab)).replication == Replication.STREAMING


def test_state_survives_a_restart(tmp_path) -> None:
    path = tmp_path / "mssql.json"
    first = MssqlAgSimulator(path)
    info = first.start()
    first.inject("pause")
    first.stop()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    second = MssqlAgSimulator(path)
    try:
        again = second.start()
        assert again == info  # same ports, same passwords
        assert second.status()["faults"] == ["pause"]
        obs = connector.observe(make_target({"sim": second, **again}))
        assert obs.replication == Replication.PAUSED
    finally:
        second.stop()


def test_status_and_unknown_faults(mssql_lab, sim) -> None:
    status = sim.status()
    assert status["platform"] == "mssql" and status["primary"] == ["SQLPRI"]
    assert [r["name"] for r in status["replicas"]] == ["SQLPRI", "SQLDR"]
    assert all(r["serving"] and r["connected"] for r in status["replicas"])
    json.dumps(status)
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("meteor")
