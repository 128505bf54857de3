"""MongoConnector's execution plans run step by step against the replica-set simulator.

Each step function is called with an ExecutionContext built here (no Django, no runner), in plan
order, stopping at the first failure as the runner does. The simulator records every command it
received with the user that sent it, so the tests check exactly what a plan sends, to which
member and with which account, and then look at the set again with ``observe()``.
"""

from __future__ import annotations

import time
from typing import Any

import pymongo
import pytest

from connectors.contract import ExecutionContext, Phase, PlanStep, Role, StepResult, Verified
from connectors.platforms.mongodb import MongoConnector
from connectors.platforms.mongodb_plan import CATCH_UP_SECONDS, STEPDOWN_SECONDS

pytestmark = pytest.mark.integration

connector = MongoConnector()
STATE_CHANGING = {"replSetReconfig", "replSetStepDown", "replSetFreeze", "insert"}


def run(
    steps: list[PlanStep], ctx: ExecutionContext, overrides: frozenset[str] = frozenset()
) -> dict[str, StepResult]:
    """Run the steps in order like the runner: stop at the first failure unless it is an
    overridable precheck the operator chose to override."""
    results: dict[str, StepResult] = {}
    for step in steps:
        result = step.run(ctx)
        results[step.name] = result
        if result.ok:
            continue
        if step.phase == Phase.PRECHECK and result.overridable and step.name in overrides:
            continue
        break
    return results


def failed(results: dict[str, StepResult]) -> dict[str, str]:
    return {name: r.detail for name, r in results.items() if not r.ok}


def sent(sim: Any, since: float) -> list[tuple[str, int, str | None, dict[str, Any]]]:
    """State-changing commands received since ``since``: (command, member, user, document)."""
    return [
        (c["command"], c["member"], c["user"], c["doc"])
        for c in sim.received_commands()
        if c["at"] >= since and c["command"] in STATE_CHANGING
    ]


def config(mongo_lab: dict[str, Any]) -> dict[str, Any]:
    creds = mongo_lab["credentials"]["monitor"]
    with pymongo.MongoClient(
        mongo_lab["connection"]["dr_member"],
        directConnection=True,
        serverSelectionTimeoutMS=2000,
        username=creds["username"],
        password=creds["password"],
    ) as client:
        return client.admin.command("replSetGetConfig")["config"]


def priorities(mongo_lab: dict[str, Any]) -> dict[str, tuple[float, int]]:
    return {m["host"]: (m["priority"], m["votes"]) for m in config(mongo_lab)["members"]}


def shape(kind: str, target: Any) -> list[tuple[str, str, bool, bool]]:
    return [
        (s.name, str(s.phase), s.changes_state, s.idempotent) for s in connector.plan(kind, target)
    ]


# -- plan shapes -------------------------------------------------------------------------------

PRECHECKS = [
    ("members_reachable", "precheck", False, True),
    ("target_is_healthy_secondary", "precheck", False, True),
    ("lag_under_threshold", "precheck", False, True),
    ("set_has_primary", "precheck", False, True),
]


def test_switchover_and_failback_plans_have_the_same_shape(exec_target) -> None:
    expected = PRECHECKS + [
        ("raise_target_priority", "step", True, True),
        ("step_down_primary", "step", True, True),
        ("wait_for_target_primary", "step", False, True),
        ("lower_old_primary_priority", "step", True, True),
        ("roles_swapped", "postcheck", False, True),
        ("old_primary_replicating", "postcheck", False, True),
        ("lag_near_zero", "postcheck", False, True),
    ]
    assert shape("switchover", exec_target()) == expected
    assert shape("failback", exec_target()) == expected
    steps = connector.plan("switchover", exec_target())
    assert all(s.verify is not None for s in steps if s.changes_state)
    assert all(s.timeout_seconds > 0 for s in steps)


def test_failover_plan_marks_the_forced_reconfig_dangerous(exec_target) -> None:
    steps = connector.plan("failover", exec_target())
    assert shape("failover", exec_target()) == [
        ("target_reachable", "precheck", False, True),
        ("old_primary_not_writable", "precheck", False, True),
        ("estimate_loss_window", "precheck", False, True),
        ("force_reconfig_target_only_voter", "step", True, True),
        ("wait_for_target_primary", "step", False, True),
        ("target_is_primary", "postcheck", False, True),
        ("old_primary_not_primary", "postcheck", False, True),
    ]
    forced = next(s for s in steps if s.name == "force_reconfig_target_only_voter")
    assert forced.description.startswith("DANGEROUS")


def test_drill_plan_writes_only_a_marker(exec_target) -> None:
    assert shape("drill", exec_target()) == PRECHECKS + [
        ("consistency_probe", "step", True, True),
        ("rpo_within_target", "postcheck", False, True),
        ("roles_unchanged", "postcheck", False, True),
    ]


def test_planning_needs_no_credentials_and_refuses_unknown_kinds(exec_target) -> None:
    from connectors.contract import NotSupported

    target = exec_target()
    for kind in ("switchover", "failback", "failover", "drill"):
        connector.plan(kind, target)
    assert target.credentials.asked == []
    with pytest.raises(NotSupported):
        connector.plan("teleport", target)


# -- switchover and failback -------------------------------------------------------------------


def test_switchover_swaps_roles_with_exactly_these_commands(
    make_ctx, mongo_lab, sim, exec_target
) -> None:
    conn = mongo_lab["connection"]
    primary, dr = conn["primary_member"], conn["dr_member"]
    execute_user = mongo_lab["credentials"]["execute"]["username"]
    target = exec_target()
    ctx = make_ctx(target, "switchover")
    since = time.time()
    started = time.monotonic()
    results = run(connector.plan("switchover", target), ctx)
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results.values()), failed(results)
    assert len(results) == 11

    commands = sent(sim, since)
    assert [(c, m, u) for c, m, u, _ in commands] == [
        ("replSetReconfig", 0, execute_user),  # on the primary: DR member electable
        ("replSetFreeze", 1, execute_user),  # lifts any earlier stepdown period
        ("replSetStepDown", 0, execute_user),
        ("replSetReconfig", 1, execute_user),  # on the new primary: old primary passive
    ]
    first, freeze, stepdown, last = (doc for _, _, _, doc in commands)
    assert freeze["replSetFreeze"] == 0
    raised = {m["host"]: m["priority"] for m in first["replSetReconfig"]["members"]}
    assert raised[dr] == 1.0 and first["replSetReconfig"]["version"] == 2
    assert "term" not in first["replSetReconfig"] and "force" not in first
    assert stepdown["replSetStepDown"] == STEPDOWN_SECONDS
    assert stepdown["secondaryCatchUpPeriodSecs"] == CATCH_UP_SECONDS
    lowered = {m["host"]: m["priority"] for m in last["replSetReconfig"]["members"]}
    assert lowered[primary] == 0 and last["replSetReconfig"]["version"] == 3
    # Execute credentials only for the state-changing steps (and after them, monitor again).
    assert target.credentials.asked.count("execute") == 4

    obs = connector.observe(target)
    assert (obs.dr.role, obs.primary.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.primary.details["sync_source"] == dr
    assert priorities(mongo_lab) == {primary: (0.0, 1), dr: (1.0, 1), conn["hosts"][2]: (0.0, 1)}

    waited = results["wait_for_target_primary"].data
    assert waited["caught_up_to"] == waited["last_markers"]["old_primary_last"]
    assert waited["election_reason"] == "stepUpRequestSkipDryRun"
    assert 0.1 <= waited["write_unavailable_seconds"] < 2.0
    assert results["set_has_primary"].data["marker_before"]
    print(f"\nswitchover against the simulator: {elapsed:.3f} s total, writes unavailable "
          f"{waited['write_unavailable_seconds']:.3f} s")  # fmt: skip


def test_failback_restores_the_original_roles_and_priorities(
    make_ctx, mongo_lab, sim, exec_target
) -> None:
    conn = mongo_lab["connection"]
    original = priorities(mongo_lab)
    target = exec_target()
    assert all(
        r.ok
        for r in run(connector.plan("switchover", target), make_ctx(target, "switchover")).values()
    )
    results = run(connector.plan("failback", target), make_ctx(target, "failback", "primary"))
    assert all(r.ok for r in results.values()), failed(results)
    obs = connector.observe(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.dr.details["sync_source"] == conn["primary_member"]
    assert {h: p for h, (p, _) in priorities(mongo_lab).items()} == {
        h: p for h, (p, _) in original.items()
    }
    assert "caught_up_to" in results["wait_for_target_primary"].data


def test_switchover_to_the_member_that_is_already_primary_stops_at_the_prechecks(
    make_ctx, sim, exec_target
) -> None:
    target = exec_target()
    since = time.time()
    results = run(connector.plan("failback", target), make_ctx(target, "failback", "primary"))
    assert not results["target_is_healthy_secondary"].ok
    assert "already the primary" in results["target_is_healthy_secondary"].detail
    assert sent(sim, since) == [] and "execute" not in target.credentials.asked


def test_lag_over_the_threshold_stops_before_any_change(make_ctx, sim, exec_target) -> None:
    sim.inject("lag")
    time.sleep(2.2)
    target = exec_target(red_lag_seconds=1)
    since = time.time()
    results = run(connector.plan("switchover", target), make_ctx(target, "switchover"))
    lag = results["lag_under_threshold"]
    assert not lag.ok and lag.data["threshold_seconds"] == 1.0 and lag.data["lag_seconds"] >= 2
    assert list(results)[-1] == "lag_under_threshold" and sent(sim, since) == []


def test_stepdown_is_refused_while_no_electable_secondary_catches_up(
    make_ctx, mongo_lab, sim, exec_target
):
    """What MongoDB answers, and the primary keeps (and resumes) its writes."""
    conn, creds = mongo_lab["connection"], mongo_lab["credentials"]["execute"]
    target = exec_target()
    steps = {s.name: s for s in connector.plan("switchover", target)}
    assert steps["raise_target_priority"].run(make_ctx(target, "switchover")).ok
    sim.inject("pause")
    with pymongo.MongoClient(
        conn["primary_member"], directConnection=True, socketTimeoutMS=5000, **_login(creds)
    ) as client:
        started = time.monotonic()
        with pytest.raises(pymongo.errors.OperationFailure) as refused:
            client.admin.command({"replSetStepDown": 10, "secondaryCatchUpPeriodSecs": 1})
        assert 1.0 <= time.monotonic() - started < 2.5
        assert refused.value.code == 262 and "No electable secondaries" in str(refused.value)
        assert client.admin.command("hello")["isWritablePrimary"] is True
    assert steps["step_down_primary"].verify(make_ctx(target, "switchover")) == Verified.NOT_DONE


def _login(creds: dict[str, str]) -> dict[str, str]:
    return {"username": creds["username"], "password": creds["password"], "authSource": "admin"}


def test_verify_tells_done_from_not_done(make_ctx, sim, exec_target) -> None:
    target = exec_target()
    steps = {s.name: s for s in connector.plan("switchover", target)}
    ctx = make_ctx(target, "switchover")
    assert steps["raise_target_priority"].verify(ctx) == Verified.NOT_DONE
    assert steps["step_down_primary"].verify(ctx) == Verified.NOT_DONE
    assert all(r.ok for r in run(connector.plan("switchover", target), ctx).values())
    for name in ("raise_target_priority", "step_down_primary", "lower_old_primary_priority"):
        assert steps[name].verify(ctx) == Verified.DONE, name
    # Running a state-changing step again after it took effect sends nothing.
    since = time.time()
    assert steps["step_down_primary"].run(ctx).ok
    assert steps["raise_target_priority"].run(ctx).ok is False  # the old primary is no primary
    assert sent(sim, since) == []


# -- failover ----------------------------------------------------------------------------------


def test_failover_with_the_primary_down_promotes_dr_and_reports_the_loss_window(
    make_ctx, mongo_lab, sim, exec_target
) -> None:
    conn = mongo_lab["connection"]
    execute_user = mongo_lab["credentials"]["execute"]["username"]
    sim.inject("lag")
    time.sleep(1.5)
    sim.inject("primary_down")
    target = exec_target()
    since = time.time()
    results = run(connector.plan("failover", target), make_ctx(target, "failover"))
    assert all(r.ok for r in results.values()), failed(results)
    assert "does not answer" in results["old_primary_not_writable"].detail

    window = results["estimate_loss_window"].data
    # 1.5 s the DR member had not applied, plus one heartbeat interval (2 s) of uncertainty.
    assert 3.4 <= window["potential_loss_window_seconds"] <= 4.5
    assert set(window["last_markers"]) >= {"dr_applied", "old_primary_last_heard"}

    (freeze, (command, member, user, doc)) = sent(sim, since)
    assert freeze[:3] == ("replSetFreeze", 1, execute_user) and freeze[3]["replSetFreeze"] == 0
    assert (command, member, user, doc["force"]) == ("replSetReconfig", 1, execute_user, True)
    voting = {m["host"]: (m["priority"], m["votes"]) for m in doc["replSetReconfig"]["members"]}
    assert voting[conn["dr_member"]] == (1.0, 1)
    assert all(v == (0, 0) for h, v in voting.items() if h != conn["dr_member"])
    assert config(mongo_lab)["version"] > 10_000  # a forced config jumps ahead
    assert results["wait_for_target_primary"].data["rto_measured_seconds"] > 0
    assert "is down" in results["old_primary_not_primary"].detail

    obs = connector.observe(target)
    assert obs.dr.role == Role.PRIMARY
    # The old primary comes back as a non-voting secondary of the new primary.
    sim.inject("heal")
    obs = connector.observe(target)
    assert (obs.dr.role, obs.primary.role) == (Role.PRIMARY, Role.STANDBY)
    assert obs.primary.details["sync_source"] == conn["dr_member"]


def test_failover_is_refused_while_the_old_primary_takes_writes(make_ctx, sim, exec_target) -> None:
    target = exec_target()
    since = time.time()
    results = run(connector.plan("failover", target), make_ctx(target, "failover"))
    guard = results["old_primary_not_writable"]
    assert not guard.ok and guard.overridable and guard.override_needs_policy is False
    assert "isWritablePrimary true" in guard.detail
    assert list(results)[-1] == "old_primary_not_writable" and sent(sim, since) == []


def test_an_overridden_failover_demotes_the_old_primary_instead_of_making_two(
    make_ctx, mongo_lab, sim, exec_target
) -> None:
    target = exec_target()
    results = run(
        connector.plan("failover", target),
        make_ctx(target, "failover"),
        overrides=frozenset({"old_primary_not_writable"}),
    )
    assert not results["old_primary_not_writable"].ok
    assert all(r.ok for n, r in results.items() if n != "old_primary_not_writable")
    obs = connector.observe(target)
    assert obs.dr.role == Role.PRIMARY and obs.primary.role == Role.STANDBY
    assert "potential_loss_window_seconds" in results["estimate_loss_window"].data


def test_failback_after_a_failover_restores_the_primary_site(
    make_ctx, mongo_lab, sim, exec_target
) -> None:
    sim.inject("primary_down")
    target = exec_target()
    assert all(
        r.ok for r in run(connector.plan("failover", target), make_ctx(target, "failover")).values()
    )
    sim.inject("heal")
    results = run(connector.plan("failback", target), make_ctx(target, "failback", "primary"))
    assert all(r.ok for r in results.values()), failed(results)
    obs = connector.observe(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)


# -- drill -------------------------------------------------------------------------------------


def test_drill_measures_rpo_and_leaves_roles_unchanged(
    make_ctx, mongo_lab, sim, exec_target
) -> None:
    sim.replication_delay = 0.3
    execute_user = mongo_lab["credentials"]["execute"]["username"]
    target = exec_target(rpo_target_seconds=5)
    since = time.time()
    results = run(connector.plan("drill", target), make_ctx(target, "drill"))
    assert all(r.ok for r in results.values()), failed(results)
    rpo = results["consistency_probe"].data["rpo_measured_seconds"]
    assert 0.3 <= rpo < 1.0
    ((command, member, user, doc),) = sent(sim, since)
    assert (command, member, user) == ("insert", 0, execute_user)
    assert doc["$db"] == "bcservice" and doc["insert"] == "bc_drill"
    marker_id = doc["documents"][0]["_id"]
    reads = [c for c in sim.received_commands("find") if c["at"] >= since]
    assert {c["member"] for c in reads} == {1} and all(c["user"] == execute_user for c in reads)
    assert reads[-1]["doc"]["filter"] == {"_id": marker_id}
    # Asked for readPreference=secondary; on a direct connection pymongo sends primaryPreferred
    # (Server Selection spec), which a secondary serves: the read ran on the DR member itself.
    assert reads[-1]["doc"]["$readPreference"]["mode"] != "primary"
    obs = connector.observe(target)
    assert (obs.primary.role, obs.dr.role) == (Role.PRIMARY, Role.STANDBY)
    assert results["rpo_within_target"].data["rpo_target_seconds"] == 5.0


def test_drill_fails_when_the_marker_does_not_arrive_within_the_rpo(
    make_ctx, sim, exec_target
) -> None:
    sim.inject("pause")
    target = exec_target(rpo_target_seconds=0.5)
    steps = {s.name: s for s in connector.plan("drill", target)}
    started = time.monotonic()
    result = steps["consistency_probe"].run(make_ctx(target, "drill"))
    assert not result.ok and result.data["marker_unavailable"] is True
    assert time.monotonic() - started < 8
    assert steps["consistency_probe"].verify(make_ctx(target, "drill")) == Verified.NOT_DONE


# -- privileges --------------------------------------------------------------------------------


def test_the_monitor_account_cannot_change_anything(make_ctx, mongo_lab, sim, exec_target) -> None:
    monitor = mongo_lab["credentials"]["monitor"]
    target = exec_target(execute=monitor)  # a misconfigured secret: execute = monitor account
    before = config(mongo_lab)
    for kind, name in (
        ("switchover", "raise_target_priority"),
        ("failover", "force_reconfig_target_only_voter"),
        ("drill", "consistency_probe"),
    ):
        step = next(s for s in connector.plan(kind, target) if s.name == name)
        result = step.run(make_ctx(target, kind))
        assert not result.ok and "code 13 Unauthorized" in result.detail, (name, result.detail)
    conn = mongo_lab["connection"]
    with pymongo.MongoClient(
        conn["primary_member"], directConnection=True, socketTimeoutMS=3000, **_login(monitor)
    ) as client:
        with pytest.raises(pymongo.errors.OperationFailure) as refused:
            client.admin.command({"replSetStepDown": 60})
        assert refused.value.code == 13
    assert config(mongo_lab)["version"] == before["version"]
    assert connector.observe(target).primary.role == Role.PRIMARY


def test_failover_soon_after_a_failback_still_elects_the_dr_member(make_ctx, sim, exec_target):
    """The DR member stepped down in the failback, so it is inside its stepdown period: the
    forced reconfig is preceded by replSetFreeze 0, or it would never be elected."""
    target = exec_target()
    for kind, site in (("switchover", "dr"), ("failback", "primary")):
        results = run(connector.plan(kind, target), make_ctx(target, kind, site))
        assert all(r.ok for r in results.values()), failed(results)
    sim.inject("primary_down")
    results = run(connector.plan("failover", target), make_ctx(target, "failover"))
    assert all(r.ok for r in results.values()), failed(results)
    assert connector.observe(target).dr.role == Role.PRIMARY
