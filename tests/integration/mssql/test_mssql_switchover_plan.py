"""SQL Server plans, step by step against the AG simulator: shapes, switchover, failback, the
refusals that keep a planned failover lossless, crash-recovery verification and logins.

pyodbc + FreeTDS send real T-SQL; the simulator records every batch with the replica and the
login, so the assertions name exactly what a plan sent, where and as whom.
"""

from __future__ import annotations

import time

import pytest

from connectors.contract import NotSupported, Outcome, Phase, Target, Verified
from connectors.platforms.mssql import ReplicaError
from connectors.platforms.mssql_plan import bracketed, failover_sql, resume_sql
from connectors.platforms.mssql_steps import LAG_LIMIT_SECONDS, send_and_wait

from .conftest import sql
from .execution_helpers import (
    Credentials,
    connector,
    context,
    logins_by_replica,
    mark,
    plan_of,
    roles,
    run_plan,
    writes,
)

pytestmark = pytest.mark.integration

FAILOVER = "ALTER AVAILABILITY GROUP [bc-ag] FAILOVER;"
FORCE = "ALTER AVAILABILITY GROUP [bc-ag] FORCE_FAILOVER_ALLOW_DATA_LOSS;"
RESUME = "ALTER DATABASE [appdb] SET HADR RESUME;"

SHAPES = {
    "switchover": [
        ("replicas_reachable", Phase.PRECHECK, False),
        ("target_synchronized", Phase.PRECHECK, False),
        ("lag_near_zero", Phase.PRECHECK, False),
        ("ag_healthy", Phase.PRECHECK, False),
        ("planned_failover", Phase.STEP, True),
        ("roles_swapped", Phase.POSTCHECK, False),
        ("old_primary_synchronized", Phase.POSTCHECK, False),
    ],
    "failback": [
        ("replicas_reachable", Phase.PRECHECK, False),
        ("target_synchronized", Phase.PRECHECK, False),
        ("lag_near_zero", Phase.PRECHECK, False),
        ("ag_healthy", Phase.PRECHECK, False),
        ("resume_data_movement", Phase.STEP, True),
        ("planned_failover", Phase.STEP, True),
        ("roles_swapped", Phase.POSTCHECK, False),
        ("old_primary_synchronized", Phase.POSTCHECK, False),
    ],
    "failover": [
        ("target_reachable", Phase.PRECHECK, False),
        ("old_primary_not_writable", Phase.PRECHECK, False),
        ("potential_data_loss", Phase.PRECHECK, False),
        ("forced_failover", Phase.STEP, True),
        ("target_is_primary", Phase.POSTCHECK, False),
    ],
    "drill": [
        ("replicas_reachable", Phase.PRECHECK, False),
        ("replication_streaming", Phase.PRECHECK, False),
        ("consistency_probe", Phase.STEP, False),
        ("roles_unchanged", Phase.POSTCHECK, False),
    ],
}


def _target(**connection: object) -> Target:
    base = {"primary_server": "127.0.0.1", "dr_server": "127.0.0.1", "availability_group": "bc-ag"}

    def refuse(purpose: str) -> dict[str, str]:
        raise AssertionError(f"planning fetched {purpose} credentials")

    return Target("orders-ag", "mssql", {**base, **connection}, credentials=refuse)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_plan_shapes(kind: str) -> None:
    steps = connector.plan(kind, _target())  # no I/O, no credentials
    assert [(s.name, s.phase, s.changes_state) for s in steps] == SHAPES[kind]
    for step in steps:
        assert step.description and len(step.description) <= 300 and step.timeout_seconds > 0
        if step.changes_state:
            assert step.verify is not None
    by_name = {s.name: s for s in steps}
    if kind in ("switchover", "failback"):
        assert by_name["planned_failover"].idempotent is False
    if kind == "failback":
        assert by_name["resume_data_movement"].idempotent is True
    if kind == "failover":
        assert by_name["forced_failover"].idempotent is False
        assert by_name["forced_failover"].description.startswith("DANGEROUS")
    if kind == "drill":
        assert "No marker row is written" in by_name["consistency_probe"].description


def test_names_are_checked_and_bracket_quoted() -> None:
    assert failover_sql("bc-ag") == FAILOVER
    assert failover_sql("bc-ag", forced=True) == FORCE
    assert resume_sql("appdb") == RESUME
    assert resume_sql("odd]name") == "ALTER DATABASE [odd]]name] SET HADR RESUME;"
    assert bracketed("Sales DB", "database") == "[Sales DB]"
    for bad in ("x]; DROP DATABASE y;--", "a'b", "", " lead", "x\nGO"):
        with pytest.raises(ValueError):
            resume_sql(bad)
    for bad in ("bc]ag", "ag; SHUTDOWN", "ag name"):
        with pytest.raises(ValueError):
            failover_sql(bad)
        with pytest.raises(NotSupported, match="not a plain identifier"):
            connector.plan("switchover", _target(availability_group=bad))
    with pytest.raises(NotSupported, match="no 'reseed' execution"):
        connector.plan("reseed", _target())


def test_switchover_swaps_roles_with_one_failover_statement(lab) -> None:
    sim = lab["sim"]
    creds = Credentials(lab)
    ctx = context(lab, "switchover", "dr", credentials=creds)
    since = mark(sim)
    results = run_plan(ctx)
    assert list(results) == [name for name, _, _ in SHAPES["switchover"]]
    assert all(r.ok for r in results.values()), {n: r.detail for n, r in results.items()}
    # Exactly one state-changing statement, on the DR replica, with the execution login.
    assert writes(sim, since) == [("SQLDR", "bc_execute", FAILOVER)]
    assert logins_by_replica(sim, since) == {
        ("SQLPRI", "bc_monitor"),
        ("SQLDR", "bc_monitor"),
        ("SQLDR", "bc_execute"),
    }
    # Execution credentials were fetched by the state-changing step only.
    assert {step for step, purpose in creds.fetched if purpose == "execute"} == {"planned_failover"}
    assert roles(lab) == ("standby", "primary")
    step = results["planned_failover"].data
    before = results["lag_near_zero"].data["marker_before"]
    assert int(step["caught_up_to"]) >= int(before) and step["covers_marker_before"] is True
    assert 0 < step["write_unavailable_seconds"] < 1.0
    assert int(step["marker_after"]) >= int(step["caught_up_to"])
    assert results["roles_swapped"].data["caught_up_to"] == step["caught_up_to"]
    # The former primary was SYNCHRONIZING for a moment and the postcheck waited for it.
    synced = results["old_primary_synchronized"].data
    assert synced["databases"] == {"appdb": "SYNCHRONIZED"} and synced["seconds"] > 0.2


def test_failback_after_switchover_restores_roles(lab) -> None:
    sim = lab["sim"]
    assert all(r.ok for r in run_plan(context(lab, "switchover", "dr")).values())
    since = mark(sim)
    results = run_plan(context(lab, "failback", "primary"))
    assert all(r.ok for r in results.values()), {n: r.detail for n, r in results.items()}
    assert results["resume_data_movement"].detail.startswith("nothing suspended")
    assert writes(sim, since) == [("SQLPRI", "bc_execute", FAILOVER)]
    assert roles(lab) == ("primary", "standby")


def test_failback_goes_to_the_primary_site_only(lab) -> None:
    results = run_plan(context(lab, "failback", "dr"))
    assert not results["replicas_reachable"].ok
    assert "primary site" in results["replicas_reachable"].detail


def test_switchover_to_the_current_primary_is_refused(lab) -> None:
    results = run_plan(context(lab, "switchover", "primary"))
    assert list(results) == ["replicas_reachable"]
    assert "already PRIMARY" in results["replicas_reachable"].detail


def test_paused_secondary_is_refused_before_any_change(lab) -> None:
    sim = lab["sim"]
    sim.inject("pause")
    since = mark(sim)
    ctx = context(lab, "switchover", "dr")
    results = run_plan(ctx)
    check = results["target_synchronized"]
    assert not check.ok and not check.overridable
    assert "not SYNCHRONIZED" in check.detail and "SUSPEND_FROM_USER" in check.detail
    assert list(results)[-1] == "target_synchronized"
    # The step checks again itself and does not send the statement either.
    step = plan_of(ctx)["planned_failover"].run(ctx)
    assert not step.ok and step.detail.startswith("not sent")
    assert writes(sim, since) == []
    assert roles(lab) == ("primary", "standby")


def test_lagging_redo_fails_the_lag_precheck_with_an_override_by_policy(lab) -> None:
    lab["sim"].inject("lag")
    time.sleep(LAG_LIMIT_SECONDS + 0.3)
    results = run_plan(context(lab, "switchover", "dr"))
    # Redo trails, hardening does not: still SYNCHRONIZED, but the estimate is too high.
    assert results["target_synchronized"].ok
    lag = results["lag_near_zero"]
    assert not lag.ok and lag.overridable and lag.override_needs_policy
    assert lag.data["lag_seconds"] > LAG_LIMIT_SECONDS and "estimated data loss" in lag.detail


def test_asynchronous_commit_secondary_is_refused(lab) -> None:
    sim = lab["sim"]
    sql(
        lab,
        "primary",
        "ALTER AVAILABILITY GROUP [bc-ag] MODIFY REPLICA ON N'SQLDR' "
        "WITH (AVAILABILITY_MODE = ASYNCHRONOUS_COMMIT)",
        purpose="execute",
    )
    results = run_plan(context(lab, "switchover", "dr"))
    check = results["target_synchronized"]
    assert not check.ok and not check.overridable
    assert "ASYNCHRONOUS_COMMIT" in check.detail and "synchronous-commit" in check.detail
    assert check.data["databases"] == {"appdb": "SYNCHRONIZING"}
    since = mark(sim)
    ctx = context(lab, "switchover", "dr")
    assert plan_of(ctx)["planned_failover"].run(ctx).detail.startswith("not sent")
    assert writes(sim, since) == []


def test_the_monitoring_login_cannot_fail_over(lab) -> None:
    sim = lab["sim"]
    ctx = context(lab, "switchover", "dr", credentials=Credentials(lab, execute_as="monitor"))
    since = mark(sim)
    result = plan_of(ctx)["planned_failover"].run(ctx)
    assert not result.ok and "15151" in result.detail
    assert "Cannot alter the availability group" in result.detail
    assert writes(sim, since) == [("SQLDR", "bc_monitor", FAILOVER)]
    assert roles(lab) == ("primary", "standby")
    assert lab["credentials"]["monitor"]["password"] not in result.detail


def test_verify_after_a_crash_asks_the_target_its_role(lab) -> None:
    sim = lab["sim"]
    ctx = context(lab, "switchover", "dr")
    verify = plan_of(ctx)["planned_failover"].verify
    assert verify is not None
    assert verify(ctx) == Verified.NOT_DONE  # still SECONDARY: the statement never ran
    assert plan_of(ctx)["planned_failover"].run(ctx).ok
    assert verify(ctx) == Verified.DONE  # PRIMARY
    sim.inject("primary_down")  # the target (now primary) stops answering
    started = time.monotonic()
    assert verify(ctx) == Verified.UNKNOWN
    assert time.monotonic() - started < 5


def test_verify_is_unknown_when_the_target_hangs(lab) -> None:
    lab["sim"].inject("timeout")  # the DR replica accepts TCP and never answers
    ctx = context(lab, "switchover", "dr")
    started = time.monotonic()
    assert plan_of(ctx)["planned_failover"].verify(ctx) == Verified.UNKNOWN
    assert time.monotonic() - started < 10


def test_execution_credentials_are_not_fetched_by_prechecks(lab) -> None:
    creds = Credentials(lab)
    ctx = context(lab, "switchover", "dr", credentials=creds)
    for step in connector.plan("switchover", ctx.target):
        if step.phase == Phase.PRECHECK:
            creds.step = step.name
            assert step.run(ctx).ok
    assert {purpose for _, purpose in creds.fetched} == {"monitor"}


class _NoAnswer:
    """A session whose failover statement gets no answer (query timeout)."""

    def run(self, sql: str, timeout: int | None = None) -> None:
        raise ReplicaError("127.0.0.1:1: HYT00: Timeout expired", Outcome.TIMEOUT)


def test_a_failover_statement_without_answer_is_state_unknown(lab) -> None:
    ctx = context(lab, "switchover", "dr")
    after, _, failed = send_and_wait(ctx, _NoAnswer(), "SQLDR", FAILOVER)
    # Not a refusal: the target is asked (read-only) and the step fails, never re-sent.
    assert after is None and "State unknown" in failed
    assert "the replica now says: not_done" in failed
