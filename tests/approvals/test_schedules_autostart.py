"""Planned-time start of scheduled drills (executions/scheduled_start.py).

A schedule's drill starts by itself only when it is approved (by approvals, not a break-glass
grant), the policy it was approved under allows scheduled starts, it is a drill, and the planned
time came less than the grace period ago. Every other case is recorded as not started, audited,
and left to an operator. Real times (the start service checks expiry against the clock); the
connector is the scripted double of tests/executions so no target is touched.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalPolicy, BreakGlassEligibility, Schedule, ScheduledOccurrence
from audit.models import AuditEvent
from executions import scheduled_start
from executions.models import Execution
from tests.executions.conftest import script  # noqa: F401  (the scripted connector fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def allow_scheduled_start(default_policies, people) -> ApprovalPolicy:
    policy = ApprovalPolicy.objects.get(tier=1, kind="", environment="")
    policy.allow_scheduled_start = True
    return services.policy_save(actor=people["admin"], policy=policy)


@pytest.fixture
def planned() -> Any:
    return timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=30)


@pytest.fixture
def drill(allow_scheduled_start, people, resource, planned, script):  # noqa: F811
    """A one-off drill schedule with auto-start whose request has just been created."""

    def make(kind: str = "drill", **fields: Any) -> ScheduledOccurrence:
        values: dict[str, Any] = {
            "name": f"{kind}-{Schedule.objects.count() + 1}",
            "kind": "drill",
            "resource": resource,
            "created_by": people["op"],
            "change_ticket_template": "CHG{date}",
            "time_zone": "UTC",
            "frequency": "once",
            "start_date": planned.date(),
            "at_time": planned.time(),
            "lead_minutes": 120,
            "auto_start_drills": True,
        }
        values.update(fields)
        schedule = services.schedule_save(actor=people["admin"], schedule=Schedule(**values))
        if kind != "drill":  # cannot be saved so; forced, to test the start job's own check
            from inventory.models import Site

            Schedule.objects.filter(pk=schedule.pk).update(
                kind=kind, target_site=Site.objects.get(name="west")
            )
        assert services.schedules_run_due()["requested"] == 1
        return ScheduledOccurrence.objects.select_related("request").get(schedule=schedule)

    return make


def _approve(request, people) -> None:
    services.request_approve(request, actor=people["it"], comment="ok")
    services.request_approve(request, actor=people["biz"], comment="ok")
    request.refresh_from_db()
    assert request.state == "approved"


def test_approved_drill_starts_at_its_planned_time(drill, people, planned):
    occurrence = drill()
    _approve(occurrence.request, people)
    assert scheduled_start.start_due(now=planned - timedelta(minutes=1)) == {
        "started": 0,
        "not_started": 0,
    }
    assert not Execution.objects.exists()
    assert scheduled_start.start_due(now=planned + timedelta(minutes=1))["started"] == 1
    occurrence.refresh_from_db()
    execution = Execution.objects.get()
    assert occurrence.state == "started" and occurrence.handled_at is not None
    assert execution.request_id == occurrence.request_id
    assert execution.started_by_id == people["op"].pk
    occurrence.request.refresh_from_db()
    assert occurrence.request.state == "running"
    # Through the executions start service (its audit), plus the schedule's decision.
    assert AuditEvent.objects.filter(action="execution.queued", object_id=str(execution.pk))
    event = AuditEvent.objects.get(action="schedule.drill_started")
    assert event.after["execution"] == execution.pk
    # Decided once: a second run starts nothing more.
    assert scheduled_start.start_due(now=planned + timedelta(minutes=2))["started"] == 0
    assert Execution.objects.count() == 1


def test_unapproved_drill_is_not_started(drill, planned):
    occurrence = drill()
    counts = scheduled_start.start_due(now=planned + timedelta(minutes=1))
    assert counts == {"started": 0, "not_started": 1}
    occurrence.refresh_from_db()
    assert occurrence.state == "not_started"
    assert "pending_approval, not approved" in occurrence.detail
    assert not Execution.objects.exists()
    occurrence.request.refresh_from_db()
    assert occurrence.request.state == "pending_approval"
    event = AuditEvent.objects.get(action="schedule.drill_not_started")
    assert event.after["reason"] == occurrence.detail


def test_a_break_glass_grant_does_not_stand_in_for_approvals(drill, people, resource, planned):
    occurrence = drill()
    BreakGlassEligibility.objects.create(user=people["op"], note="on-call")
    services.breakglass_open(actor=people["op"], resource=resource, minutes=120, reason="x")
    assert scheduled_start.start_due(now=planned + timedelta(minutes=1))["not_started"] == 1
    assert not Execution.objects.exists()
    occurrence.refresh_from_db()
    assert "not approved" in occurrence.detail


def test_policy_that_does_not_allow_scheduled_starts_wins(
    drill, people, planned, allow_scheduled_start
):
    occurrence = drill()
    # The admin withdraws the permission: the approvals given under it are void, and approvals
    # given again are under a policy that does not allow scheduled starts.
    allow_scheduled_start.allow_scheduled_start = False
    services.policy_save(actor=people["admin"], policy=allow_scheduled_start)
    occurrence.request.refresh_from_db()
    _approve(occurrence.request, people)
    assert scheduled_start.start_due(now=planned + timedelta(minutes=1))["not_started"] == 1
    occurrence.refresh_from_db()
    assert "does not allow scheduled starts" in occurrence.detail
    assert not Execution.objects.exists()


def test_a_switchover_schedule_never_starts_by_itself(drill, people, planned):
    occurrence = drill(kind="switchover")
    assert occurrence.request.kind == "switchover"
    _approve(occurrence.request, people)
    assert scheduled_start.start_due(now=planned + timedelta(minutes=1))["not_started"] == 1
    occurrence.refresh_from_db()
    assert "Only drills start" in occurrence.detail
    assert not Execution.objects.exists()
    occurrence.request.refresh_from_db()
    assert occurrence.request.state == "approved"  # an operator may still start it


def test_a_drill_is_not_started_late(drill, people, planned):
    occurrence = drill()
    _approve(occurrence.request, people)
    late = planned + scheduled_start.START_GRACE + timedelta(minutes=1)
    assert scheduled_start.start_due(now=late)["not_started"] == 1
    occurrence.refresh_from_db()
    assert "not started late" in occurrence.detail
    assert not Execution.objects.exists()


def test_without_auto_start_the_job_leaves_the_occurrence_to_an_operator(drill, people, planned):
    occurrence = drill(auto_start_drills=False)
    _approve(occurrence.request, people)
    assert scheduled_start.start_due(now=planned + timedelta(minutes=1)) == {
        "started": 0,
        "not_started": 0,
    }
    occurrence.refresh_from_db()
    assert occurrence.state == "requested" and occurrence.handled_at is None
    assert not Execution.objects.exists()
