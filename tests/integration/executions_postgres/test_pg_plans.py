"""PostgreSQL plans step by step against the real lab pair, without Django: switchover (with and
without the ``stop`` host action), failback, failover (primary killed; refused while the old
primary takes writes, unless overridden), drill, the lag refusal, and what verify() answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from connectors.contract import ExecutionContext, Role, Target, Verified
from connectors.lab.postgres import PgPair
from connectors.platforms import postgres_steps as steps
from connectors.platforms.postgres_exec import fence_state, nodes

from .conftest import Credentials, connector, roles, run_plan

pytestmark = pytest.mark.integration


def query(pair: PgPair, node: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(pair.dsn(node), autocommit=True) as conn:
        cur = conn.execute(sql, args or None)
        return cur.fetchone() if cur.description else None


def write_rows(pair: PgPair, node: str, tag: str, count: int = 50) -> None:
    with psycopg.connect(pair.dsn(node), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bc_itest (tag text, n int)")
        conn.execute(
            "INSERT INTO bc_itest SELECT %s, g FROM generate_series(1, %s) g", (tag, count)
        )


def count_rows(pair: PgPair, node: str, tag: str) -> int:
    return int(query(pair, node, "SELECT count(*) FROM bc_itest WHERE tag = %s", tag)[0])


def test_switchover_swaps_roles_for_real_and_measures(
    pair: PgPair, target: Target, exec_lab: dict[str, Any]
) -> None:
    write_rows(pair, "primary", "before-switchover")
    run = run_plan(target, "switchover", "dr")
    assert run.ok, run.report()
    assert roles(pair) == {"primary": True, "standby": False}
    obs = connector.observe(target)
    assert obs.dr.role == Role.PRIMARY and obs.primary.role == Role.STANDBY
    assert str(obs.replication) == "streaming" and obs.lag_bytes == 0
    # Nothing committed before the fence was lost, and the new primary takes writes.
    assert count_rows(pair, "standby", "before-switchover") == 50
    write_rows(pair, "standby", "after-switchover", 5)
    data = run.data()
    assert data["caught_up_to"] == run.ctx.state["final_lsn"]
    assert data["write_unavailable_seconds"] > 0
    assert data["streaming_after_promote_seconds"] > 0
    # Clean handover: the old primary stopped before the promotion, so nothing to rewind.
    assert "no rewind required" in run.result("rejoin_old_primary").detail
    assert fence_state(target, nodes(target)["primary"]) is False  # cleared on the new standby
    # Generous bounds for a loaded CI box; the benchmark measures the real figures.
    assert data["write_unavailable_seconds"] < 5
    assert data["streaming_after_promote_seconds"] < 10
    # The rejoin got the execution account through its environment: the command line and the
    # recorded details never show the password.
    password = exec_lab["credentials"]["execute"]["password"]
    for ran in run.ran:
        assert password not in ran.result.detail and password not in str(ran.result.data)


def test_credentials_execute_only_inside_steps(pair: PgPair, target: Target) -> None:
    """Planning fetches nothing; the switchover's prechecks read with the monitoring account;
    the first state-changing step is the first to ask for ``execute`` (invariant 6)."""
    creds = target.credentials
    assert isinstance(creds, Credentials)
    for kind in ("switchover", "failback", "failover", "drill"):
        connector.plan(kind, target)
    assert creds.asked == []
    run = run_plan(target, "switchover", "dr", until="host_actions_configured")
    assert run.ok and set(creds.asked) == {"monitor"}


def test_switchover_then_failback_restores_configured_roles(pair: PgPair, target: Target) -> None:
    assert run_plan(target, "switchover", "dr").ok
    write_rows(pair, "standby", "written-on-dr")
    run = run_plan(target, "failback", "primary")
    assert run.ok, run.report()
    assert "already streams" in run.result("prepare_original_primary").detail
    assert roles(pair) == {"primary": False, "standby": True}
    assert count_rows(pair, "primary", "written-on-dr") == 50


def test_failback_must_target_the_primary_site(pair: PgPair, target: Target) -> None:
    run = run_plan(target, "failback", "dr")
    assert run.names == ["failback_direction"] and not run.ok


def test_switchover_without_stop_action_rewinds_the_old_primary(
    pair: PgPair, target_for: Callable[..., Target], exec_lab: dict[str, Any]
) -> None:
    """The issue's order: the fenced old primary keeps running through the promotion and is
    rewound afterwards (pg_rewind after CHECKPOINT on the new primary)."""
    actions = {k: v for k, v in exec_lab["connection"]["host_actions"].items() if k != "stop"}
    target = target_for(host_actions=actions)
    run = run_plan(target, "switchover", "dr")
    assert run.ok, run.report()
    assert "stop_old_primary" not in run.names
    assert "rewinding from last common checkpoint" in run.result("rejoin_old_primary").detail
    assert roles(pair) == {"primary": True, "standby": False}


def test_failover_with_primary_killed_promotes_and_reports_loss_window(
    pair: PgPair, target: Target
) -> None:
    write_rows(pair, "primary", "before-crash")
    pair.heartbeat_tick()
    pair.inject("primary_down")
    run = run_plan(target, "failover", "dr")
    assert run.ok, run.report()
    data = run.data()
    assert data["marker_unavailable"] is True
    assert 0 <= data["potential_loss_window_seconds"] < 60
    assert data["last_markers"]["standby_replay_lsn"]
    assert roles(pair)["standby"] is False
    assert count_rows(pair, "standby", "before-crash") == 50  # streamed before the crash
    write_rows(pair, "standby", "after-failover", 5)
    # Failback: the crashed primary is rewound (it crashed, then DR took over), rejoined,
    # and promoted again.
    back = run_plan(target, "failback", "primary")
    assert back.ok, back.report()
    assert "pg_rewind" in back.result("prepare_original_primary").detail
    assert roles(pair) == {"primary": False, "standby": True}
    assert count_rows(pair, "primary", "after-failover") == 5


def test_failover_refused_while_old_primary_takes_writes(pair: PgPair, target: Target) -> None:
    run = run_plan(target, "failover", "dr")
    assert run.names == ["promote_node_ready", "old_primary_not_writable"]
    refusal = run.result("old_primary_not_writable")
    assert not refusal.ok and refusal.overridable and not refusal.override_needs_policy
    assert "two writable primaries" in refusal.detail
    assert roles(pair) == {"primary": False, "standby": True}  # nothing promoted


def test_failover_proceeds_when_the_operator_overrides(pair: PgPair, target: Target) -> None:
    write_rows(pair, "primary", "seen-by-both")
    run = run_plan(target, "failover", "dr", overrides=frozenset({"old_primary_not_writable"}))
    assert run.ok, run.report()
    assert run.ran[1].overridden
    data = run.data()
    # The old primary was readable: its LSN settles the loss window.
    assert "primary_current_lsn" in data["last_markers"]
    assert "marker_unavailable" not in data
    assert roles(pair) == {"primary": False, "standby": False}  # split brain, as chosen


def test_failover_allowed_when_old_primary_is_fenced(pair: PgPair, target: Target) -> None:
    with psycopg.connect(pair.dsn("primary"), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.2)
    run = run_plan(target, "failover", "dr", until="old_primary_not_writable")
    assert run.result("old_primary_not_writable").ok
    assert "fenced" in run.result("old_primary_not_writable").detail


def test_drill_measures_rpo_and_does_not_change_roles(pair: PgPair, target: Target) -> None:
    run = run_plan(target, "drill", "dr")
    assert run.ok, run.report()
    data = run.data()
    assert 0 < data["rpo_measured_seconds"] < data["rpo_target_seconds"] == 60
    assert roles(pair) == {"primary": False, "standby": True}
    marker = run.ctx.state["drill_id"]
    assert query(pair, "standby", "SELECT count(*) FROM bc_drill WHERE id = %s", marker)[0] == 1


def test_drill_fails_when_the_marker_is_not_replayed_within_the_rpo(
    pair: PgPair, target_for: Callable[..., Target]
) -> None:
    pair.inject("pause_replay")
    target = target_for(rpo_target_seconds=1)
    run = run_plan(target, "drill", "dr")
    # Paused replay: the drill's precheck already says so.
    assert run.names[-1] == "standby_streaming" and not run.ok
    pair.inject("heal")
    pair.inject("lag")  # streaming, but applied an hour late
    run = run_plan(target, "drill", "dr")
    assert run.names[-1] == "marker_replayed" and not run.ok
    assert "not visible" in run.result("marker_replayed").detail


def test_precheck_refuses_high_lag_and_changes_nothing(
    pair: PgPair, target_for: Callable[..., Target]
) -> None:
    target = target_for(max_lag_seconds=1)
    pair.inject("lag")
    for _ in range(12):  # heartbeat writes the standby does not apply
        pair.heartbeat_tick()
        time.sleep(0.2)
    pair.write_load(200)
    run = run_plan(target, "switchover", "dr")
    assert run.names[-1] == "lag_within_threshold" and not run.ok
    assert "recovery_min_apply_delay" in run.result("lag_within_threshold").detail
    assert fence_state(target, nodes(target)["primary"]) is False  # never fenced
    assert roles(pair) == {"primary": False, "standby": True}


def test_verify_answers_for_promote_fence_and_rejoin(pair: PgPair, target: Target) -> None:
    ctx = ExecutionContext(target=target, kind="switchover", promote_site="dr", log=print)
    assert steps.verify_promoted(ctx) == Verified.NOT_DONE
    assert steps.verify_fence(ctx) == Verified.NOT_DONE
    assert steps.verify_rejoined(ctx) == Verified.NOT_DONE  # primary node is not a standby
    assert steps.fence_primary(ctx).ok
    assert steps.verify_fence(ctx) == Verified.DONE
    assert steps.wait_for_catch_up(ctx).ok
    assert steps.verify_stopped(ctx) == Verified.NOT_DONE
    assert steps.stop_old_primary(ctx).ok
    assert steps.verify_stopped(ctx) == Verified.DONE
    assert steps.stop_old_primary(ctx).ok  # again: already down is fine
    assert steps.promote(ctx).ok
    assert steps.verify_promoted(ctx) == Verified.DONE
    # Not idempotent: a second promote refuses rather than acting blindly.
    again = steps.promote(ctx)
    assert not again.ok and "already a primary" in again.detail
    assert steps.rejoin_old_primary(ctx).ok
    assert steps.verify_rejoined(ctx) == Verified.DONE
    # Stopped before the promotion, so no rewind copied the new primary's settings over: the
    # fence is still in its postgresql.auto.conf until cleared.
    assert steps.verify_unfenced(ctx) == Verified.NOT_DONE
    assert steps.clear_fence(ctx).ok and steps.verify_unfenced(ctx) == Verified.DONE
    pair.servers()["standby"].stop("immediate")  # the promoted DR node goes away
    assert steps.verify_promoted(ctx) == Verified.UNKNOWN
    deadline = time.monotonic() + 10  # until the old primary's receiver notices
    while steps.verify_rejoined(ctx) != Verified.UNKNOWN and time.monotonic() < deadline:
        time.sleep(0.1)
    assert steps.verify_rejoined(ctx) == Verified.UNKNOWN


def test_fence_blocks_writes_and_ends_sessions(pair: PgPair, target: Target) -> None:
    ctx = ExecutionContext(target=target, kind="switchover", promote_site="dr", log=print)
    app = psycopg.connect(pair.dsn("primary"), autocommit=True)
    app.execute("SELECT 1")
    result = steps.fence_primary(ctx)
    assert result.ok and result.data["terminated_sessions"] >= 1
    with pytest.raises(psycopg.OperationalError):
        app.execute("SELECT 1")  # terminated
    with (
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        psycopg.connect(pair.dsn("primary"), autocommit=True) as conn,
    ):
        conn.execute("CREATE TABLE bc_should_fail (x int)")
    assert steps.fence_primary(ctx).ok  # idempotent
    assert ctx.state["fenced_at"] <= time.time()
