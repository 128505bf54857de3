"""Forced failover (invariant-10 guard, loss window, suspended former primary), failback with
the resume, and the drill, step by step against the AG simulator; plus the loss-window rules
on hand-made replica states (clocks in different time zones)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

import pyodbc
import pytest

from connectors.contract import Replication, Verified
from connectors.lab.mssql_sim import MssqlAgSimulator
from connectors.platforms.mssql import LocalState
from connectors.platforms.mssql_failover import loss_window

from .conftest import sql
from .execution_helpers import (
    Credentials,
    connector,
    context,
    mark,
    plan_of,
    roles,
    run_plan,
    writes,
)

pytestmark = pytest.mark.integration

FAILOVER = "ALTER AVAILABILITY GROUP [bc-ag] FAILOVER;"
FORCE = "ALTER AVAILABILITY GROUP [bc-ag] FORCE_FAILOVER_ALLOW_DATA_LOSS;"
GUARD = "old_primary_not_writable"


def test_forced_failover_is_refused_while_the_old_primary_is_primary(lab) -> None:
    sim = lab["sim"]
    since = mark(sim)
    ctx = context(lab, "failover", "dr")
    results = run_plan(ctx)
    guard = results[GUARD]
    assert not guard.ok and guard.overridable and guard.override_needs_policy is False
    assert "still PRIMARY" in guard.detail and guard.data["old_primary"]["role"] == "PRIMARY"
    assert list(results) == ["target_reachable", GUARD]
    # The step checks the guard again itself: without the override nothing is sent.
    step = plan_of(ctx)["forced_failover"].run(ctx)
    assert not step.ok and step.detail.startswith("not sent")
    assert writes(sim, since) == []
    assert roles(lab) == ("primary", "standby")


def test_operator_override_forces_and_suspends_the_old_primary(lab) -> None:
    sim = lab["sim"]
    since = mark(sim)
    results = run_plan(context(lab, "failover", "dr", overrides=(GUARD,)))
    assert not results[GUARD].ok  # failed, and overridden by the operator
    assert all(r.ok for n, r in results.items() if n != GUARD), {
        n: r.detail for n, r in results.items()
    }
    step = results["forced_failover"]
    assert step.data["guard_overridden"] is True and "overridden by the operator" in step.detail
    assert writes(sim, since) == [("SQLDR", "bc_execute", FORCE)]
    assert roles(lab) == ("standby", "primary")
    # The former primary was up: it is now a SECONDARY with its database suspended.
    post = results["target_is_primary"]
    assert post.data["old_primary"] == {
        "role": "SECONDARY",
        "suspended": {"appdb": "SUSPEND_FROM_PARTNER"},
    }
    assert "SET HADR RESUME" in post.detail


def test_failover_with_the_primary_down_records_the_loss_window(lab) -> None:
    sim: MssqlAgSimulator = lab["sim"]
    sim.inject("lag")  # redo stops on the DR replica...
    time.sleep(1.0)
    sim.inject("primary_down")  # ...then the primary is lost
    creds = Credentials(lab)
    since = mark(sim)
    results = run_plan(context(lab, "failover", "dr", credentials=creds))
    assert all(r.ok for r in results.values()), {n: r.detail for n, r in results.items()}
    assert "not reachable" in results[GUARD].detail
    step = results["forced_failover"].data
    # The primary was not seen unable to write: the window runs from the DR replica's last
    # redone commit to the promotion, an upper bound of at least the second of frozen redo.
    assert step["potential_loss_window_seconds"] >= 1.0
    markers = step["last_markers"]
    assert {"dr_last_commit_time", "dr_last_hardened_lsn", "dr_lost_primary_at"} <= set(markers)
    # Forced failover redoes every hardened block: the new primary took over at its hardened LSN.
    assert step["caught_up_to"] == markers["dr_last_hardened_lsn"]
    assert int(markers["dr_last_hardened_lsn"]) > int(markers["dr_last_redone_lsn"])
    assert results["potential_data_loss"].data["potential_loss_window_seconds"] >= 1.0
    assert "stay suspended" in results["forced_failover"].detail
    assert writes(sim, since) == [("SQLDR", "bc_execute", FORCE)]
    assert {s for s, purpose in creds.fetched if purpose == "execute"} == {"forced_failover"}
    obs = connector.observe(context(lab, "failover", "dr").target)
    assert obs.dr.role.value == "primary" and obs.primary.outcome.value == "connection_error"


def test_failback_resumes_the_suspended_former_primary_first(lab) -> None:
    sim: MssqlAgSimulator = lab["sim"]
    sim.inject("primary_down")
    assert all(r.ok for r in run_plan(context(lab, "failover", "dr")).values())
    sim.inject("heal")  # the former primary is back as a suspended SECONDARY
    obs = connector.observe(context(lab, "failback", "primary").target)
    assert obs.replication == Replication.PAUSED
    ctx = context(lab, "failback", "primary")
    resume_verify = plan_of(ctx)["resume_data_movement"].verify
    assert resume_verify is not None and resume_verify(ctx) == Verified.NOT_DONE
    since = mark(sim)
    results = run_plan(ctx)
    assert all(r.ok for r in results.values()), {n: r.detail for n, r in results.items()}
    assert "suspended, resumed by the first step" in results["target_synchronized"].detail
    assert writes(sim, since) == [
        ("SQLPRI", "bc_execute", "ALTER DATABASE [appdb] SET HADR RESUME;"),
        ("SQLPRI", "bc_execute", FAILOVER),
    ]
    assert results["resume_data_movement"].data["seconds"] > 0.2  # waited for SYNCHRONIZED
    assert resume_verify(ctx) == Verified.DONE
    assert roles(lab) == ("primary", "standby")
    assert connector.observe(ctx.target).replication == Replication.STREAMING


def test_failback_resumes_every_database_with_quoted_names(tmp_path) -> None:
    sim = MssqlAgSimulator(tmp_path / "mssql.json", databases=("appdb", "odd]db"))
    own = {"sim": sim, **sim.start()}
    try:
        sql(own, "dr", FORCE, purpose="execute")  # the primary is up: it ends up suspended
        since = mark(sim)
        results = run_plan(context(own, "failback", "primary"))
        assert all(r.ok for r in results.values()), {n: r.detail for n, r in results.items()}
        assert writes(sim, since) == [
            ("SQLPRI", "bc_execute", "ALTER DATABASE [appdb] SET HADR RESUME;"),
            ("SQLPRI", "bc_execute", "ALTER DATABASE [odd]]db] SET HADR RESUME;"),
            ("SQLPRI", "bc_execute", FAILOVER),
        ]
    finally:
        sim.stop()


def test_old_primary_alive_behind_a_partition_is_not_writable_proof(lab) -> None:
    # The primary cannot be reached from here (wrong port), but the DR replica is still
    # CONNECTED to it: it is alive and may be taking writes.
    ctx = context(lab, "failover", "dr", primary_port=1)
    result = plan_of(ctx)[GUARD].run(ctx)
    assert not result.ok and result.overridable and result.override_needs_policy is False
    assert "still CONNECTED" in result.detail


def test_forced_failover_verify(lab) -> None:
    lab["sim"].inject("primary_down")
    ctx = context(lab, "failover", "dr")
    verify = plan_of(ctx)["forced_failover"].verify
    assert verify(ctx) == Verified.UNKNOWN  # RESOLVING: cannot tell from the role alone
    assert plan_of(ctx)["forced_failover"].run(ctx).ok
    assert verify(ctx) == Verified.DONE


def test_drill_measures_rpo_and_changes_nothing(lab) -> None:
    sim = lab["sim"]
    creds = Credentials(lab)
    since = mark(sim)
    ctx = context(lab, "drill", "dr", credentials=creds, rpo_target_seconds=5)
    results = run_plan(ctx)
    assert all(r.ok for r in results.values()), {n: r.detail for n, r in results.items()}
    probe = results["consistency_probe"].data
    assert 0 < probe["rpo_measured_seconds"] < 1.0 and probe["rpo_target_seconds"] == 5
    assert int(probe["dr_redone_lsn"]) >= int(probe["probe_marker"])
    assert writes(sim, since) == []
    assert {purpose for _, purpose in creds.fetched} == {"monitor"}
    assert roles(lab) == ("primary", "standby")


def test_drill_fails_when_redo_does_not_reach_the_marker_within_the_rpo(lab) -> None:
    lab["sim"].inject("lag")
    ctx = context(lab, "drill", "dr", rpo_target_seconds=1)
    started = time.monotonic()
    results = run_plan(ctx)
    probe = results["consistency_probe"]
    assert not probe.ok and "had not redone past" in probe.detail
    assert "rpo_measured_seconds" not in probe.data
    assert 1.0 <= time.monotonic() - started < 8


def test_recovery_lsn_marks_where_the_new_primary_took_over(lab) -> None:
    [[before]] = sql(
        lab, "primary", "SELECT recovery_lsn, last_hardened_lsn FROM "
        "sys.dm_hadr_database_replica_states WHERE is_local = 1",
    )  # fmt: skip
    sql(lab, "dr", FAILOVER, purpose="execute")
    [[after]] = sql(
        lab, "dr", "SELECT recovery_lsn, last_hardened_lsn FROM "
        "sys.dm_hadr_database_replica_states WHERE is_local = 1",
    )  # fmt: skip
    assert after["recovery_lsn"] >= before["last_hardened_lsn"]
    assert after["last_hardened_lsn"] >= after["recovery_lsn"] > before["recovery_lsn"]


# -- the loss-window rules on hand-made states -----------------------------------------------

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _state(
    role: str, commit: datetime, hardened: int, now: datetime, offset_h: int = 0
) -> LocalState:
    return LocalState(
        replica="R",
        role=role,
        availability_mode="SYNCHRONOUS_COMMIT",
        connected="DISCONNECTED",
        health="NOT_HEALTHY",
        lost_primary_at=None,
        server_now=now,
        utc_offset=timedelta(hours=offset_h),
        databases={
            "appdb": {
                "last_commit_time": commit,
                "last_hardened_lsn": Decimal(hardened),
                "last_redone_lsn": Decimal(hardened),
            }
        },
    )


def test_loss_window_rules() -> None:
    ctx = context({"connection": {"database": "appdb"}, "credentials": {}}, "failover", "dr")
    dr = _state("RESOLVING", T0, 100, T0 + timedelta(seconds=30))
    # Old primary read and no longer writable, DR hardened everything it has: no loss.
    old = _state("SECONDARY", T0 + timedelta(seconds=4), 100, T0)
    assert loss_window(ctx, dr, old)[0] == 0.0
    # ...it has log the DR replica lacks: its last commit minus the DR replica's.
    old = _state("SECONDARY", T0 + timedelta(seconds=4), 150, T0)
    seconds, markers, how = loss_window(ctx, dr, old)
    assert seconds == 4.0 and markers["primary_last_hardened_lsn"] == "150"
    assert "no longer write" in how
    # Old primary unseen: upper bound until the promotion (the DR replica's clock).
    assert loss_window(ctx, dr, None)[0] == 30.0
    # Still PRIMARY (overridden): the same upper bound.
    assert loss_window(ctx, dr, _state("PRIMARY", T0, 150, T0))[0] == 30.0
    # Replicas in different time zones: commit times are the primary's clock (UTC+2 here),
    # the DR replica says its own local time (UTC+0).
    ctx.state["old_primary_seen"] = {"utc_offset_minutes": 120}
    dr = _state("RESOLVING", T0 + timedelta(hours=2), 100, T0 + timedelta(seconds=30))
    assert loss_window(ctx, dr, None)[0] == 30.0
    # No commit time at all: marker unavailable.
    dr.databases["appdb"]["last_commit_time"] = None
    assert loss_window(ctx, dr, None)[0] is None


def test_availability_mode_changes_on_the_primary_only(lab) -> None:
    modify = (
        "ALTER AVAILABILITY GROUP [bc-ag] MODIFY REPLICA ON N'SQLDR' "
        "WITH (AVAILABILITY_MODE = ASYNCHRONOUS_COMMIT)"
    )
    with pytest.raises(pyodbc.Error, match="local availability replica is not"):
        sql(lab, "dr", modify, purpose="execute")
    with pytest.raises(pyodbc.Error, match="15151"):
        sql(lab, "primary", modify)  # the monitoring login
    sql(lab, "primary", modify, purpose="execute")
    [[row]] = sql(
        lab, "dr", "SELECT synchronization_state_desc, synchronization_health_desc "
        "FROM sys.dm_hadr_database_replica_states WHERE is_local = 1",
    )  # fmt: skip
    assert row == {"synchronization_state_desc": "SYNCHRONIZING",
                   "synchronization_health_desc": "HEALTHY"}  # fmt: skip
    with pytest.raises(pyodbc.Error, match="41142"):
        sql(lab, "dr", FAILOVER, purpose="execute")
