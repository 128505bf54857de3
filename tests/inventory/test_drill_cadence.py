# ruff: noqa: F811  (pytest fixtures imported from tests/executions/conftest.py)
"""Drill cadence by tier: the ``drill_overdue`` reason (rules table with its boundaries), the
settings, and the executions recording a passed drill (scripted connector, real runner)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import verify_chain
from connectors.contract import StepResult
from executions import runner
from executions import services as executions
from inventory import readiness, rules, services
from inventory.history import status_summary
from inventory.models import Resource, ResourceStatus

# The scripted connector and approved-request fixtures of the runner tests.
from tests.executions.conftest import (  # noqa: F401
    approved_request,
    operator,
    script,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _drill(tier=1, last=None, created=None, cadence=None, grace=None):
    cadence = cadence or {1: 90, 2: 180, 3: 365}[tier]
    return rules.DrillInput(
        tier=tier,
        cadence_days=cadence,
        last_passed_at=last,
        created_at=created,
        grace_days=cadence if grace is None else grace,
    )


@pytest.mark.parametrize(
    ("drill", "message"),
    [
        # last passed drill: exactly at the cadence is fine, one second over is overdue
        (_drill(1, last=NOW - 90 * DAY), None),
        (_drill(1, last=NOW - 90 * DAY - SECOND), "last passed drill 90 days ago; tier 1 cadence"),
        (
            _drill(1, last=NOW - 97 * DAY),
            "last passed drill 97 days ago; tier 1 cadence is 90 days",
        ),
        (_drill(2, last=NOW - 180 * DAY), None),
        (_drill(2, last=NOW - 180 * DAY - SECOND), "tier 2 cadence is 180 days"),
        (_drill(3, last=NOW - 365 * DAY), None),
        (_drill(3, last=NOW - 365 * DAY - SECOND), "tier 3 cadence is 365 days"),
        (_drill(1, last=NOW), None),
        # never drilled: overdue only after the grace period from creation
        (_drill(1, created=NOW - 90 * DAY), None),
        (_drill(1, created=NOW - 90 * DAY - SECOND), "no passed drill on record; added 90 days"),
        (_drill(1, created=NOW - 10 * DAY, grace=10), None),
        (_drill(1, created=NOW - 10 * DAY - SECOND, grace=10), "no passed drill on record"),
        (_drill(1, created=NOW), None),
        # nothing known at all: overdue
        (_drill(1), "no passed drill on record; tier 1 cadence is 90 days"),
        # a recent pass counts even for a resource far older than the grace
        (_drill(1, last=NOW - DAY, created=NOW - 900 * DAY), None),
    ],
)
def test_drill_reason_table(drill, message):
    reason = rules.drill_reason(drill, NOW)
    if message is None:
        assert reason is None
    else:
        assert reason is not None and reason.code == "drill_overdue"
        assert message in reason.message, reason.message


GREEN = rules.Evaluation(rules.GREEN, rules.OK)
FRESH = NOW - timedelta(seconds=5)


def test_overdue_turns_green_yellow_without_touching_visibility():
    shown = rules.at_read_time(GREEN, FRESH, 120, NOW, drill=_drill(1, last=NOW - 100 * DAY))
    assert (shown.state, shown.visibility, shown.codes) == ("yellow", "ok", ["drill_overdue"])


def test_overdue_never_lowers_red_and_is_not_doubled():
    red = rules.Evaluation(
        rules.RED,
        rules.OK,
        (rules.Reason("lag_red", "lag"), rules.Reason("drill_overdue", "stored by mistake")),
    )
    shown = rules.at_read_time(red, FRESH, 120, NOW, drill=_drill(1, last=NOW - 100 * DAY))
    assert shown.state == "red" and shown.codes == ["lag_red", "drill_overdue"]
    assert shown.reasons[1].message.startswith("last passed drill 100 days ago")


def test_without_drill_input_the_old_behaviour_is_kept():
    assert rules.at_read_time(GREEN, FRESH, 120, NOW).codes == []


def test_cadence_and_grace_come_from_settings(settings):
    settings.BC_DRILL_CADENCE_DAYS = {1: 30, 2: 60, 3: 120}
    settings.BC_DRILL_GRACE_DAYS = None
    assert [readiness.drill_cadence_days(t) for t in (1, 2, 3)] == [30, 60, 120]
    assert readiness.drill_grace_days(2) == 60  # default grace: one cadence
    settings.BC_DRILL_GRACE_DAYS = 7
    assert readiness.drill_grace_days(1) == 7
    del settings.BC_DRILL_CADENCE_DAYS
    assert readiness.drill_cadence_days(1) == 90  # documented default


# --- with the database: read time, API, executions ------------------------------------------


def _green_status(resource):
    now = timezone.now()
    return ResourceStatus.objects.create(
        resource=resource,
        state="green",
        visibility="ok",
        reasons=[],
        observed_at=now,
        evaluated_at=now,
        lag_seconds=0.2,
        primary_role="primary",
        dr_role="standby",
    )


def _age(resource, days):
    """Pretend the resource was added ``days`` ago (created_at is auto_now_add)."""
    Resource.objects.filter(pk=resource.pk).update(created_at=timezone.now() - days * DAY)
    resource.refresh_from_db()


def _api_status(client_for, users, resource):
    body = client_for(users["viewer"]).get(f"/api/v1/resources/{resource.pk}/").json()
    return body, body["status"]


@pytest.mark.django_db
def test_new_resource_is_not_overdue_but_an_old_undrilled_one_is(client_for, users, make_resource):
    fresh, old = make_resource("fresh-db"), make_resource("old-db", tier=2)
    _green_status(fresh)
    _green_status(old)
    _age(old, 181)
    body, status = _api_status(client_for, users, fresh)
    assert status["state"] == "green" and status["reasons"] == []
    assert body["last_passed_drill_at"] is None and body["drill_cadence_days"] == 90
    body, status = _api_status(client_for, users, old)
    assert status["state"] == "yellow" and status["visibility"] == "ok"
    (reason,) = status["reasons"]
    assert reason["code"] == "drill_overdue"
    assert reason["message"].startswith("no passed drill on record; added 181 days ago")
    assert body["drill_cadence_days"] == 180
    # summary and the status filter agree with the detail (no collection needed)
    summary = client_for(users["viewer"]).get("/api/v1/status/summary/").json()
    assert summary["state"] == {"green": 1, "yellow": 1, "red": 0}
    names = lambda value: {  # noqa: E731
        r["name"]
        for r in client_for(users["viewer"])
        .get("/api/v1/resources/", {"status": value})
        .json()["results"]
    }
    assert names("yellow") == {"old-db"} and names("green") == {"fresh-db"}


@pytest.mark.django_db
def test_passed_drill_execution_records_and_clears_overdue(
    script, approved_request, operator, make_resource, client_for, users
):
    resource = make_resource("drilled-db")
    _green_status(resource)
    _age(resource, 400)
    assert _api_status(client_for, users, resource)[1]["state"] == "yellow"
    request = approved_request(resource=resource, kind="drill")
    execution = executions.execution_start(actor=operator, request=request, confirm="drilled-db")
    assert runner.run_execution(execution.pk) == "succeeded"
    execution.refresh_from_db()
    resource.refresh_from_db()
    assert resource.last_passed_drill_at == execution.finished_at
    assert resource.current_site_id is None  # a drill moves nothing
    event = AuditEvent.objects.get(action="resource.drill_passed")
    assert event.object_id == str(resource.pk) and event.after["execution"] == execution.pk
    assert verify_chain().ok
    body, status = _api_status(client_for, users, resource)
    assert status["state"] == "green" and status["reasons"] == []
    due = datetime.fromisoformat(body["drill_due_at"])
    assert due == execution.finished_at + 90 * DAY
    assert resource.history.first().last_passed_drill_at == execution.finished_at


@pytest.mark.django_db
def test_failed_drill_records_nothing(script, approved_request, operator, make_resource):
    resource = make_resource("flaky-db")
    script.results["promote"] = StepResult(ok=False, detail="replay not seen")
    request = approved_request(resource=resource, kind="drill")
    execution = executions.execution_start(actor=operator, request=request, confirm="flaky-db")
    assert runner.run_execution(execution.pk) == "failed"
    resource.refresh_from_db()
    assert resource.last_passed_drill_at is None
    assert not AuditEvent.objects.filter(action="resource.drill_passed").exists()


@pytest.mark.django_db
def test_configuration_save_keeps_what_executions_recorded(make_resource):
    """An instance read before a drill finished must not write the old value back."""
    resource = make_resource("edited-db")
    stale = Resource.objects.get(pk=resource.pk)
    passed_at = timezone.now()
    services.resource_record_drill(actor="worker", resource_id=resource.pk, at=passed_at)
    stale.owner = "team-new"
    services.save_object(actor=None, instance=stale)
    resource.refresh_from_db()
    assert resource.owner == "team-new" and resource.last_passed_drill_at == passed_at


@pytest.mark.django_db
def test_summary_counts_overdue_as_yellow(make_resource):
    resource = make_resource("summary-db", tier=3)
    _green_status(resource)
    _age(resource, 366)
    summary = status_summary(Resource.objects.all())
    assert summary["state"]["yellow"] == 1 and summary["visibility"]["ok"] == 1
    services.resource_record_drill(actor="worker", resource_id=resource.pk, at=timezone.now())
    assert status_summary(Resource.objects.all())["state"]["green"] == 1
