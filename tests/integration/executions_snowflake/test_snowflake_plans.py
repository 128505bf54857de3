"""SnowflakeConnector's execution plans, step by step, against the scripted lab connection.

Each step function gets an ExecutionContext built here (no Django, no runner) and runs in plan
order, stopping at the first failure as the runner does. The lab records every statement with
the account and user that sent it, and executes ALTER FAILOVER GROUP against its state file, so
the tests check what was sent and then look at both accounts again with ``observe()``. No
database is needed; the end-to-end run through the runner is in test_snowflake_execution_e2e.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from connectors.contract import (
    ExecutionContext,
    NotSupported,
    Phase,
    PlanStep,
    Role,
    StepResult,
    Target,
    Verified,
)
from connectors.lab import snowflake_sim
from connectors.platforms.snowflake import SnowflakeConnector

pytestmark = pytest.mark.integration  # the deadline fixture is in conftest.py

GROUP = snowflake_sim.GROUP


@dataclass(frozen=True)
class ThresholdTarget(Target):
    """A Target carrying the resource's RPO target, which the plans read when present."""

    rpo_target_seconds: float | None = None


class Credentials:
    def __init__(self, by_purpose: Mapping[str, Mapping[str, str]]) -> None:
        self.by_purpose, self.asked = dict(by_purpose), []

    def __call__(self, purpose: str) -> Mapping[str, str]:
        self.asked.append(purpose)
        return self.by_purpose[purpose]


@pytest.fixture
def lab(tmp_path) -> snowflake_sim.SnowflakeLab:
    lab = snowflake_sim.SnowflakeLab(tmp_path / "snowflake.json", refresh_interval=60)
    lab.start()
    return lab


@pytest.fixture
def info(lab) -> dict[str, Any]:
    return lab.connection_info()


@pytest.fixture
def connector(lab) -> SnowflakeConnector:
    return SnowflakeConnector(functools.partial(snowflake_sim.connect, state_path=lab.state.path))


def _target(info: dict[str, Any], execute: dict[str, str] | None = None, **extra: Any):
    creds = Credentials(
        {
            "monitor": info["credentials"]["monitor"],
            "execute": execute or info["credentials"]["execute"],
        }
    )
    return ThresholdTarget(
        name="analytics-snowflake",
        platform="snowflake",
        connection=info["connection"],
        credentials=creds,
        timeout_seconds=2.0,
        **extra,
    )


def _ctx(target: Target, kind: str, promote_site: str = "dr") -> ExecutionContext:
    return ExecutionContext(target=target, kind=kind, promote_site=promote_site, log=lambda m: None)


def run(
    steps: list[PlanStep], ctx: ExecutionContext, overrides: frozenset[str] = frozenset()
) -> dict[str, StepResult]:
    results: dict[str, StepResult] = {}
    for step in steps:
        result = results[step.name] = step.run(ctx)
        if not result.ok and not (
            step.phase == Phase.PRECHECK and result.overridable and step.name in overrides
        ):
            break
    return results


def failed(results: dict[str, StepResult]) -> dict[str, str]:
    return {name: r.detail for name, r in results.items() if not r.ok}


def changes(lab, since: float) -> list[tuple[str, str, str]]:
    """ALTER statements since ``since``: (account, user, sql)."""
    return [
        (s["account"], s["user"], s["sql"])
        for s in lab.received_statements()
        if s["at"] >= since and s["sql"].upper().startswith("ALTER")
    ]


def shape(connector, kind: str, info) -> list[tuple[str, str, bool, bool]]:
    return [
        (s.name, str(s.phase), s.changes_state, s.idempotent)
        for s in connector.plan(kind, _target(info))
    ]


# -- plan shapes -------------------------------------------------------------------------------

PRECHECKS = [
    ("accounts_reachable", "precheck", False, True),
    ("target_is_secondary", "precheck", False, True),
    ("replication_not_broken", "precheck", False, True),
]
POSTCHECKS = [
    ("target_is_primary", "postcheck", False, True),
    ("old_primary_is_secondary", "postcheck", False, True),
]


def test_switchover_and_failback_refresh_then_promote(connector, info) -> None:
    expected = [
        *PRECHECKS,
        ("final_refresh", "step", True, True),
        ("promote_target", "step", True, False),  # not idempotent: verified, never repeated
        *POSTCHECKS,
    ]
    assert shape(connector, "switchover", info) == expected
    assert shape(connector, "failback", info) == expected
    steps = connector.plan("switchover", _target(info))
    assert all(s.verify is not None for s in steps if s.changes_state)


def test_failover_promotes_without_a_refresh(connector, info) -> None:
    assert shape(connector, "failover", info) == [
        ("target_reachable", "precheck", False, True),
        ("old_primary_not_writable", "precheck", False, True),
        ("estimate_loss_window", "precheck", False, True),
        ("promote_target", "step", True, False),
        *POSTCHECKS,
    ]


def test_drill_is_read_only(connector, info) -> None:
    assert shape(connector, "drill", info) == [
        *PRECHECKS,
        ("measure_refresh_freshness", "step", False, True),
        ("rpo_within_target", "postcheck", False, True),
        ("roles_unchanged", "postcheck", False, True),
    ]


def test_planning_fetches_no_credentials_and_checks_the_settings(connector, info) -> None:
    target = _target(info)
    for kind in ("switchover", "failback", "failover", "drill"):
        connector.plan(kind, target)
    assert target.credentials.asked == []
    with pytest.raises(NotSupported):
        connector.plan("teleport", target)
    bad = Target(
        "x", "snowflake", {**info["connection"], "failover_group": "a; DROP"}, target.credentials
    )
    with pytest.raises(NotSupported):
        connector.plan("switchover", bad)


# -- switchover and failback -------------------------------------------------------------------


def test_switchover_refreshes_then_promotes_in_the_dr_account(lab, info, connector) -> None:
    dr_account = info["connection"]["dr_account"]
    target = _target(info)
    since = time.time()
    results = run(connector.plan("switchover", target), _ctx(target, "switchover"))
    assert all(r.ok for r in results.values()), failed(results)
    assert changes(lab, since) == [
        (dr_account, "BC_EXECUTE", f"ALTER FAILOVER GROUP {GROUP} REFRESH"),
        (dr_account, "BC_EXECUTE", f"ALTER FAILOVER GROUP {GROUP} PRIMARY"),
    ]
    assert target.credentials.asked.count("execute") == 2

    refreshed = results["final_refresh"].data
    snapshot = datetime.fromisoformat(refreshed["caught_up_to"]).timestamp()
    assert since <= snapshot <= time.time()  # the refresh's own snapshot, taken just now
    promoted = results["promote_target"].data
    assert 0 <= promoted["potential_loss_window_seconds"] < 2  # snapshot -> promotion
    assert promoted["last_markers"]["snapshot"] == refreshed["caught_up_to"]

    obs = connector.observe(target)
    assert (obs.dr.role, obs.primary.role) == (Role.PRIMARY, Role.STANDBY)
    assert lab.status()["primary_site"] == "dr"


def test_failback_restores_the_primary_account(lab, info, connector) -> None:
    target = _target(info)
    assert all(
        r.ok for r in run(connector.plan("switchover", target), _ctx(target, "switchover")).values()
    )
    since = time.time()
    results = run(connector.plan("failback", target), _ctx(target, "failback", "primary"))
    assert all(r.ok for r in results.values()), failed(results)
    primary_account = info["connection"]["primary_account"]
    assert [(a, sql.split()[-1]) for a, _, sql in changes(lab, since)] == [
        (primary_account, "REFRESH"),
        (primary_account, "PRIMARY"),
    ]
    obs = connector.observe(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    # The DR account is the secondary again and has history from the failback's refresh on.
    assert obs.replication.value == "streaming" and obs.dr_marker


def test_switchover_to_the_account_already_primary_stops_at_the_prechecks(
    lab, info, connector
) -> None:
    target = _target(info)
    since = time.time()
    results = run(connector.plan("failback", target), _ctx(target, "failback", "primary"))
    assert not results["target_is_secondary"].ok
    assert "already holds the primary" in results["target_is_secondary"].detail
    assert changes(lab, since) == [] and "execute" not in target.credentials.asked


def test_refresh_failing_stops_before_the_promotion(lab, info, connector) -> None:
    target = _target(info)
    steps = {s.name: s for s in connector.plan("switchover", target)}
    lab.inject("primary_down")
    ctx = _ctx(target, "switchover")
    result = steps["final_refresh"].run(ctx)
    assert not result.ok and "REFRESH failed" in result.detail
    assert steps["final_refresh"].verify(ctx) == Verified.NOT_DONE
    assert lab.status()["primary_site"] == "primary"


def test_verify_tells_done_from_not_done(lab, info, connector) -> None:
    target = _target(info)
    steps = {s.name: s for s in connector.plan("switchover", target)}
    ctx = _ctx(target, "switchover")
    assert steps["promote_target"].verify(ctx) == Verified.NOT_DONE
    assert steps["final_refresh"].verify(ctx) == Verified.NOT_DONE  # never started
    assert steps["final_refresh"].run(ctx).ok
    assert steps["final_refresh"].verify(ctx) == Verified.DONE
    assert steps["promote_target"].run(ctx).ok
    assert steps["promote_target"].verify(ctx) == Verified.DONE
    since = time.time()
    again = steps["promote_target"].run(ctx)  # already primary: nothing sent
    assert again.ok and changes(lab, since) == []


# -- failover ----------------------------------------------------------------------------------


def test_failover_with_the_primary_down_reports_the_loss_window(lab, info, connector) -> None:
    lab.inject("primary_down")
    target = _target(info)
    since = time.time()
    results = run(connector.plan("failover", target), _ctx(target, "failover"))
    assert all(r.ok for r in results.values()), failed(results)
    assert "not reachable" in results["old_primary_not_writable"].detail
    window = results["estimate_loss_window"].data["potential_loss_window_seconds"]
    assert snowflake_sim.REFRESH_SECONDS <= window < snowflake_sim.REFRESH_SECONDS + 3
    promoted = results["promote_target"].data
    assert promoted["potential_loss_window_seconds"] >= window
    assert [sql for _, _, sql in changes(lab, since)] == [f"ALTER FAILOVER GROUP {GROUP} PRIMARY"]
    assert "not reachable" in results["old_primary_is_secondary"].detail
    lab.inject("heal")
    obs = connector.observe(target)
    assert (obs.dr.role, obs.primary.role) == (Role.PRIMARY, Role.STANDBY)


def test_failover_is_refused_while_the_old_primary_is_reachable(lab, info, connector) -> None:
    target = _target(info)
    since = time.time()
    results = run(connector.plan("failover", target), _ctx(target, "failover"))
    guard = results["old_primary_not_writable"]
    assert not guard.ok and guard.overridable and guard.override_needs_policy is False
    assert list(results)[-1] == "old_primary_not_writable" and changes(lab, since) == []
    # The operator's explicit override lets it proceed (the runner records it).
    results = run(
        connector.plan("failover", target),
        _ctx(target, "failover"),
        overrides=frozenset({"old_primary_not_writable"}),
    )
    assert all(r.ok for n, r in results.items() if n != "old_primary_not_writable"), failed(results)
    assert lab.status()["primary_site"] == "dr"


# -- drill -------------------------------------------------------------------------------------


def test_drill_measures_the_refresh_age_and_changes_nothing(lab, info, connector) -> None:
    target = _target(info, rpo_target_seconds=60)
    since = time.time()
    results = run(connector.plan("drill", target), _ctx(target, "drill"))
    assert all(r.ok for r in results.values()), failed(results)
    rpo = results["measure_refresh_freshness"].data["rpo_measured_seconds"]
    assert snowflake_sim.REFRESH_SECONDS <= rpo < snowflake_sim.REFRESH_SECONDS + 2
    assert changes(lab, since) == [] and "execute" not in target.credentials.asked
    assert lab.status()["primary_site"] == "primary"


def test_drill_fails_when_the_refresh_is_older_than_the_rpo(lab, info, connector) -> None:
    lab.inject("lag")
    target = _target(info, rpo_target_seconds=1)
    results = run(connector.plan("drill", target), _ctx(target, "drill"))
    assert not results["rpo_within_target"].ok
    assert "> RPO target 1 s" in results["rpo_within_target"].detail


# -- privileges and the lab's statements -------------------------------------------------------


def test_the_monitor_role_cannot_refresh_or_promote(lab, info, connector) -> None:
    monitor = info["credentials"]["monitor"]
    target = _target(info, execute=monitor)  # a misconfigured secret: execute = monitor user
    steps = {s.name: s for s in connector.plan("switchover", target)}
    for name in ("final_refresh", "promote_target"):
        result = steps[name].run(_ctx(target, "switchover"))
        assert not result.ok and "permission_denied" in result.detail, result.detail
        assert "Insufficient privileges" in result.detail
    conn = snowflake_sim.connect(
        lab.state.path,
        account=info["connection"]["dr_account"],
        user=monitor["username"],
        password=monitor["password"],
    )
    with pytest.raises(ProgrammingError) as refused:
        conn.cursor().execute(f"ALTER FAILOVER GROUP {GROUP} PRIMARY")
    assert (refused.value.errno, refused.value.sqlstate) == (3001, "42501")
    assert lab.status()["primary_site"] == "primary"


def test_alter_in_the_primary_account_and_unknown_groups_are_refused(lab, info) -> None:
    execute = info["credentials"]["execute"]
    login = {"user": execute["username"], "password": execute["password"]}
    primary = snowflake_sim.connect(
        lab.state.path, account=info["connection"]["primary_account"], **login
    )
    with pytest.raises(ProgrammingError) as refused:
        primary.cursor().execute(f"ALTER FAILOVER GROUP {GROUP} REFRESH")
    assert refused.value.sqlstate == "55000"
    dr = snowflake_sim.connect(lab.state.path, account=info["connection"]["dr_account"], **login)
    with pytest.raises(ProgrammingError) as missing:
        dr.cursor().execute("ALTER FAILOVER GROUP NO_SUCH_GROUP PRIMARY")
    assert missing.value.errno == 2003
    cursor = dr.cursor()
    cursor.execute(f"ALTER FAILOVER GROUP {GROUP} SUSPEND")
    assert cursor.fetchall() == [("Statement executed successfully.",)]
    assert lab.status()["secondary_state"] == "SUSPENDED"
    cursor.execute(f"alter failover group {GROUP.lower()} resume")
    assert lab.status()["secondary_state"] == "STARTED"
