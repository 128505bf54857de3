"""The runner's rules with a scripted connector: order, stop on failure, locks, evidence,
overrides, timeouts, and recovery after a worker stopped mid-step."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from audit.selectors import verify_chain
from connectors.contract import StepResult, Support, Verified
from executions import runner, services
from executions.models import ActiveExecutionLock, Execution
from executions.services import ExecutionConflict

pytestmark = pytest.mark.django_db


def _start(request, operator, **kwargs):
    name = request.resource.name if request.resource_id else request.group.name
    return services.execution_start(actor=operator, request=request, confirm=name, **kwargs)


def _steps(execution):
    return [(s.name, s.state) for s in execution.steps.order_by("position")]


def test_happy_path_runs_every_step_in_order_and_finishes(script, approved_request, operator):
    request = approved_request()
    execution = _start(request, operator)
    assert ActiveExecutionLock.objects.filter(execution=execution).count() == 1
    assert runner.run_execution(execution.pk) == "succeeded"
    execution.refresh_from_db()
    request.refresh_from_db()
    assert execution.state == "succeeded" and request.state == "succeeded"
    assert [name for _, name in script.ran] == [
        "reachable",
        "lag_ok",
        "fence",
        "promote",
        "roles_swapped",
    ]
    assert all(state == "succeeded" for _, state in _steps(execution))
    assert not ActiveExecutionLock.objects.exists()
    # Execution credentials were fetched by the state-changing steps only.
    assert script.credentials_seen == ["exe", "exe"]
    actions = list(
        AuditEvent.objects.filter(object_type="executions.execution").values_list(
            "action", flat=True
        )
    )
    assert actions[0] == "execution.queued" and actions[-1] == "execution.succeeded"
    assert actions.count("execution.step_started") == 5
    assert verify_chain().ok


def test_confirmation_must_match_scope_name(script, approved_request, operator):
    request = approved_request()
    with pytest.raises(ValidationError) as info:
        services.execution_start(actor=operator, request=request, confirm="wrong-name")
    assert "confirm" in info.value.message_dict
    assert not Execution.objects.exists()
    request.refresh_from_db()
    assert request.state == "approved"


def test_unapproved_request_cannot_start(script, operator, make_resource, sites):
    from approvals import services as approvals
    from approvals.exceptions import RequestNotStartable

    resource = make_resource()
    request = approvals.request_create(
        actor=operator,
        kind="switchover",
        target_site=sites["west"],
        reason="r",
        resource=resource,
        change_ticket="CHG1234567",
    )
    with pytest.raises(RequestNotStartable):
        services.execution_start(actor=operator, request=request, confirm=resource.name)
    assert not Execution.objects.exists() and not ActiveExecutionLock.objects.exists()


def test_second_active_execution_on_a_resource_is_refused_by_the_database(
    script, approved_request, operator, make_resource
):
    resource = make_resource()
    # Drills: they do not move the primary, so the anti-flapping rule does not stop the second.
    first = _start(approved_request(resource=resource, kind="drill"), operator)
    second = approved_request(resource=resource, kind="drill")
    with pytest.raises(ExecutionConflict) as info:
        _start(second, operator)
    assert f"({first.pk})" in str(info.value)
    second.refresh_from_db()
    assert second.state == "approved"  # the failed start rolled back the transition
    assert Execution.objects.count() == 1


def test_failed_precheck_stops_before_any_change(script, approved_request, operator):
    script.results["lag_ok"] = StepResult(ok=False, detail="lag 90 s over 30 s")
    execution = _start(approved_request(), operator)
    assert runner.run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert [name for _, name in script.ran] == ["reachable", "lag_ok"]
    assert _steps(execution)[2:] == [
        ("fence", "skipped"),
        ("promote", "skipped"),
        ("roles_swapped", "skipped"),
    ]
    assert "before any change" in execution.state_reason and "lag 90 s" in execution.state_reason
    assert execution.request.state == "failed"
    assert not ActiveExecutionLock.objects.exists()


def test_failed_request_cannot_be_started_again(script, approved_request, operator):
    from approvals.exceptions import RequestNotStartable

    script.results["reachable"] = StepResult(ok=False, detail="down")
    request = approved_request()
    runner.run_execution(_start(request, operator).pk)
    request.refresh_from_db()
    with pytest.raises((RequestNotStartable, ExecutionConflict)):
        _start(request, operator)


def test_override_needs_policy_permission_and_is_recorded(script, approved_request, operator):
    script.results["lag_ok"] = StepResult(ok=False, detail="lag high", overridable=True)
    request = approved_request()
    execution = _start(request, operator, overrides=["lag_ok"], override_reason="business accepts")
    # Default policies do not allow precheck overrides: the failure stands.
    assert runner.run_execution(execution.pk) == "failed"


def test_guard_override_is_the_operators_call(script, approved_request, operator):
    script.results["reachable"] = StepResult(
        ok=False,
        detail="old primary still accepts writes",
        overridable=True,
        override_needs_policy=False,
    )
    execution = _start(
        approved_request(kind="failover"),
        operator,
        overrides=["reachable"],
        override_reason="primary site burning",
    )
    assert runner.run_execution(execution.pk) == "succeeded"
    execution.refresh_from_db()
    assert _steps(execution)[0] == ("reachable", "overridden")
    event = AuditEvent.objects.get(action="execution.precheck_overridden")
    assert "primary site burning" in event.after["detail"]


def test_override_without_reason_is_refused(script, approved_request, operator):
    with pytest.raises(ValidationError) as info:
        _start(approved_request(), operator, overrides=["lag_ok"])
    assert "override_reason" in info.value.message_dict


def test_unknown_override_name_is_refused(script, approved_request, operator):
    with pytest.raises(ValidationError) as info:
        _start(approved_request(), operator, overrides=["nope"], override_reason="x")
    assert "overrides" in info.value.message_dict


def test_unsupported_kind_is_refused_before_start(script, approved_request, operator):
    script.supported["switchover"] = Support.NO
    with pytest.raises(ValidationError) as info:
        _start(approved_request(), operator)
    assert "not supported" in info.value.message_dict["kind"][0]


def test_state_changing_step_timeout_fails_with_state_unknown(script, approved_request, operator):
    script.sleeps["fence"] = 3.0
    execution = _start(approved_request(), operator)
    assert runner.run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    fence = execution.steps.get(name="fence")
    assert fence.state == "failed" and "state unknown" in fence.detail
    assert ("x", "promote") not in script.ran


def test_exception_in_step_is_recorded_without_secrets(script, approved_request, operator):
    script.raises["fence"] = RuntimeError("could not connect with password x-SECRET-2")
    execution = _start(approved_request(), operator)
    runner.run_execution(execution.pk)
    fence = Execution.objects.get(pk=execution.pk).steps.get(name="fence")
    assert fence.state == "failed"
    dumped = str(list(AuditEvent.objects.values_list("after", flat=True))) + fence.detail
    assert "x-SECRET-2" not in dumped


def _simulate_crash_during(execution, step_name):
    """Leave the execution as a killed worker would: running, a step running, a stale claim."""
    from datetime import timedelta

    from django.utils import timezone

    Execution.objects.filter(pk=execution.pk).update(
        state="running",
        owner="dead-worker",
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        runs=1,
    )
    steps = execution.steps.order_by("position")
    for step in steps:
        if step.name == step_name:
            step.state, step.attempts = "running", 1
            step.save()
            break
        step.state = "succeeded"
        step.save()


def test_crashed_state_changing_step_verified_done_is_not_run_again(
    script, approved_request, operator
):
    execution = _start(approved_request(), operator)
    _simulate_crash_during(execution, "promote")
    script.verify["promote"] = Verified.DONE
    assert runner.run_execution(execution.pk) == "succeeded"
    assert [name for _, name in script.ran] == ["roles_swapped"]
    assert Execution.objects.get(pk=execution.pk).runs == 2
    assert AuditEvent.objects.filter(action="execution.resumed").exists()


def test_crashed_non_idempotent_step_not_done_fails_for_manual_check(
    script, approved_request, operator
):
    execution = _start(approved_request(), operator)
    _simulate_crash_during(execution, "promote")
    script.verify["promote"] = Verified.NOT_DONE
    assert runner.run_execution(execution.pk) == "failed"
    assert script.ran == []
    execution.refresh_from_db()
    assert "manual check" in execution.state_reason and execution.request.state == "failed"


def test_crashed_idempotent_step_not_done_is_run_again(script, approved_request, operator):
    execution = _start(approved_request(), operator)
    _simulate_crash_during(execution, "fence")
    script.verify["fence"] = Verified.NOT_DONE
    assert runner.run_execution(execution.pk) == "succeeded"
    assert [name for _, name in script.ran] == ["fence", "promote", "roles_swapped"]


def test_crashed_step_with_unknown_outcome_fails(script, approved_request, operator):
    execution = _start(approved_request(), operator)
    _simulate_crash_during(execution, "fence")
    assert runner.run_execution(execution.pk) == "failed"
    assert script.ran == []


def test_live_worker_keeps_its_claim(script, approved_request, operator):
    from django.utils import timezone

    execution = _start(approved_request(), operator)
    Execution.objects.filter(pk=execution.pk).update(owner="alive", heartbeat_at=timezone.now())
    assert runner.run_execution(execution.pk).startswith("not claimed")
    assert script.ran == []


def test_group_runs_members_in_order_and_stops_at_first_failure(
    script, approved_request, operator, make_resource
):
    from inventory import services as inventory
    from inventory.models import ResourceGroup

    a, b, c = make_resource("db-a"), make_resource("db-b"), make_resource("db-c")
    group = ResourceGroup.objects.create(name="shop", tier=1)
    inventory.group_set_members(actor=None, group=group, resources=[b, a, c])
    calls = script.ran
    request = approved_request(group=group)
    execution = _start(request, operator)
    assert ActiveExecutionLock.objects.filter(execution=execution).count() == 3
    # Make db-a's promote fail: db-b ran fully, db-a stopped, db-c never started.
    script.results["promote"] = StepResult(ok=True)
    steps = execution.steps.order_by("position")
    assert [s.resource.name for s in steps][::5] == ["db-b", "db-a", "db-c"]

    orig_run = runner._run_step

    def run_step(execution_, step, plan_step, ctx):
        if step.resource.name == "db-a" and step.name == "promote":
            script.results["promote"] = StepResult(ok=False, detail="promote refused")
        return orig_run(execution_, step, plan_step, ctx)

    import unittest.mock

    with unittest.mock.patch.object(runner, "_run_step", run_step):
        assert runner.run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    summary = execution.evidence["resources"]
    assert summary["db-b"]["outcome"] == "done"
    assert summary["db-a"]["outcome"] == "failed"
    assert summary["db-c"]["outcome"] == "not started"
    assert [t for t, _ in calls].count("db-c") == 0
    assert not ActiveExecutionLock.objects.exists()


def test_pause_point_waits_for_an_operator(script, approved_request, operator):
    execution = _start(approved_request(), operator)
    execution.steps.filter(name="promote").update(pause_before=True)
    assert runner.run_execution(execution.pk) == "paused"
    execution.refresh_from_db()
    assert execution.state == "paused"
    assert [name for _, name in script.ran] == ["reachable", "lag_ok", "fence"]
    services.execution_continue(actor=operator, execution=execution)
    assert runner.run_execution(execution.pk) == "succeeded"
    assert [name for _, name in script.ran][-2:] == ["promote", "roles_swapped"]


def test_evidence_conclusion_is_worded_conservatively(script, approved_request, operator):
    script.results["promote"] = StepResult(ok=True, data={"caught_up_to": "0/3000060"})
    execution = _start(approved_request(), operator)
    runner.run_execution(execution.pk)
    execution.refresh_from_db()
    conclusion = next(iter(execution.evidence["resources"].values()))["conclusion"]
    assert conclusion["code"] == "caught_up" and "0/3000060" in conclusion["text"]


def test_override_allowed_when_the_policy_says_so(script, approved_request, operator):
    from approvals.models import ApprovalPolicy

    ApprovalPolicy.objects.update(allow_precheck_override=True)
    script.results["lag_ok"] = StepResult(ok=False, detail="lag high", overridable=True)
    execution = _start(
        approved_request(), operator, overrides=["lag_ok"], override_reason="accepted by CAB"
    )
    assert execution.request.policy_snapshot["allow_precheck_override"] is True
    assert runner.run_execution(execution.pk) == "succeeded"
    assert Execution.objects.get(pk=execution.pk).steps.get(name="lag_ok").state == "overridden"


def test_non_overridable_precheck_failure_stands_even_when_allowed(
    script, approved_request, operator
):
    from approvals.models import ApprovalPolicy

    ApprovalPolicy.objects.update(allow_precheck_override=True)
    script.results["lag_ok"] = StepResult(ok=False, detail="timeline diverged", overridable=False)
    execution = _start(
        approved_request(), operator, overrides=["lag_ok"], override_reason="try anyway"
    )
    assert runner.run_execution(execution.pk) == "failed"
