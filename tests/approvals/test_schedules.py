"""Request schedules: saving (database validation, audited), the minute job creating exactly one
request per occurrence inside the lead window, missed occurrences, and the admin pages.

Times are fixed (March 2025 around the London spring-forward) and passed as ``now``; the
weekly switchover runs at 02:00 on Saturdays in Europe/London, two hours' lead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from approvals import services, tasks
from approvals.apps import SCHEDULES_SCHEDULE_NAME, SCHEDULES_TASK, ensure_schedule
from approvals.models import ApprovalPolicy, ExecutionRequest, Schedule, ScheduledOccurrence
from approvals.services import schedule_runs
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


SAVED_AT = utc(2025, 3, 26, 12)  # a Wednesday
FIRST = utc(2025, 3, 29, 2)  # Saturday 02:00 GMT
SECOND = utc(2025, 4, 5, 1)  # Saturday 02:00 BST


@pytest.fixture
def make_schedule(default_policies, people, sites, resource):
    def make(now: datetime = SAVED_AT, **fields: Any) -> Schedule:
        values: dict[str, Any] = {
            "name": f"switchover-{Schedule.objects.count() + 1}",
            "kind": "switchover",
            "resource": resource,
            "target_site": sites["west"],
            "created_by": people["op"],
            "change_ticket_template": "CHG{date}",
            "time_zone": "Europe/London",
            "frequency": "weekly",
            "weekdays": ["SA"],
            "start_date": date(2025, 3, 1),
            "at_time": time(2, 0),
            "lead_minutes": 120,
        }
        values.update(fields)
        return services.schedule_save(actor=people["admin"], schedule=Schedule(**values), now=now)

    return make


def _errors(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.message_dict


def test_save_plans_the_next_local_occurrence_and_is_audited(make_schedule, people):
    schedule = make_schedule()
    assert schedule.next_run_at == FIRST
    assert schedule.next_create_at == FIRST - timedelta(hours=2)
    assert schedule.next_local() == "2025-03-29 02:00 GMT (Europe/London)"
    event = AuditEvent.objects.get(action="schedule.created", object_id=str(schedule.pk))
    assert event.actor_name == people["admin"].username
    assert event.after["time_zone"] == "Europe/London"
    assert schedule.history.count() == 1


def test_job_creates_one_request_per_occurrence_inside_the_lead_window(make_schedule, people):
    schedule = make_schedule()
    # Before the lead window: nothing.
    assert services.schedules_run_due(now=FIRST - timedelta(hours=2, minutes=1))["requested"] == 0
    assert not ExecutionRequest.objects.exists()
    inside = FIRST - timedelta(minutes=90)
    assert services.schedules_run_due(now=inside)["requested"] == 1
    # Again, and again later in the window: still one request for that occurrence.
    assert services.schedules_run_due(now=inside)["requested"] == 0
    assert services.schedules_run_due(now=FIRST - timedelta(minutes=1))["requested"] == 0
    request = ExecutionRequest.objects.get()
    assert (request.kind, request.resource_id, request.requested_by_id) == (
        "switchover",
        schedule.resource_id,
        people["op"].pk,
    )
    assert request.state == "pending_approval"
    assert request.change_ticket == "CHG20250329"
    assert "2025-03-29 02:00 GMT (Europe/London)" in request.reason
    assert request.expires_at == inside + timedelta(minutes=240)  # still valid at 02:00
    occurrence = ScheduledOccurrence.objects.get()
    assert (occurrence.planned_at, occurrence.state, occurrence.request_id) == (
        FIRST,
        "requested",
        request.pk,
    )
    schedule.refresh_from_db()
    assert schedule.next_run_at == SECOND  # the next Saturday, 02:00 BST
    # Audited like any request, as the schedule's operator, plus the schedule's own event.
    created = AuditEvent.objects.get(action="request.created", object_id=str(request.pk))
    assert created.actor_id == people["op"].pk
    link = AuditEvent.objects.get(action="schedule.request_created")
    assert link.after["request"] == request.pk
    assert link.after["planned_at"] == FIRST.isoformat()
    # Bookkeeping writes no history rows (only the admin's save did).
    assert schedule.history.count() == 1


def test_requests_are_approval_gated(make_schedule, people):
    make_schedule()
    services.schedules_run_due(now=FIRST - timedelta(minutes=90))
    request = ExecutionRequest.objects.get()
    # The schedule's operator is the requester: their vote would never count.
    assert request.requested_by_id == people["op"].pk
    assert request.approved_at is None


def test_occurrence_claimed_twice_creates_one_request(make_schedule):
    """The database backstop: a stale second attempt at the same occurrence creates nothing."""
    schedule = make_schedule()
    now = FIRST - timedelta(hours=1)
    first = schedule_runs.occurrence_create_request(schedule, FIRST, now=now)
    stale = Schedule.objects.get(pk=schedule.pk)
    assert schedule_runs.occurrence_create_request(stale, FIRST, now=now) is None
    assert ExecutionRequest.objects.get() == first
    assert ScheduledOccurrence.objects.count() == 1


def test_worker_down_through_the_planned_time_records_missed(make_schedule):
    schedule = make_schedule()
    counts = services.schedules_run_due(now=FIRST + timedelta(minutes=5))
    assert counts == {"requested": 0, "missed": 1, "failed": 0, "duplicates": 0}
    assert not ExecutionRequest.objects.exists()  # never run late
    missed = ScheduledOccurrence.objects.get()
    assert (missed.planned_at, missed.state, missed.request_id) == (FIRST, "missed", None)
    assert "not created before the planned time" in missed.detail
    event = AuditEvent.objects.get(action="schedule.occurrence_missed")
    assert event.after["planned_at"] == FIRST.isoformat()
    schedule.refresh_from_db()
    assert schedule.next_run_at == SECOND
    assert services.schedules_run_due(now=FIRST + timedelta(minutes=6))["missed"] == 0


def test_long_outage_records_every_missed_occurrence_then_resumes(make_schedule):
    make_schedule()
    counts = services.schedules_run_due(now=utc(2025, 4, 19, 3))
    assert counts["missed"] == 4 and counts["requested"] == 0
    assert list(
        ScheduledOccurrence.objects.order_by("planned_at").values_list("planned_at", flat=True)
    ) == [FIRST, SECOND, utc(2025, 4, 12, 1), utc(2025, 4, 19, 1)]
    # The next one (26 April, 02:00 BST = 01:00 UTC) is requested on time.
    assert services.schedules_run_due(now=utc(2025, 4, 26, 0))["requested"] == 1


def test_failed_creation_is_retried_then_recorded_missed_with_the_reason(make_schedule):
    schedule = make_schedule()
    ApprovalPolicy.objects.filter(tier=1).delete()  # no policy applies any more
    counts = services.schedules_run_due(now=FIRST - timedelta(minutes=90))
    assert counts["failed"] == 1 and not ScheduledOccurrence.objects.exists()
    schedule.refresh_from_db()
    assert "No approval policy applies" in schedule.last_error
    assert schedule.next_run_at == FIRST  # not given up before the planned time
    counts = services.schedules_run_due(now=FIRST + timedelta(minutes=1))
    assert counts["missed"] == 1
    assert "No approval policy applies" in ScheduledOccurrence.objects.get().detail
    assert not ExecutionRequest.objects.exists()


def test_disabled_schedule_creates_nothing_and_re_enabling_plans_from_now(make_schedule, people):
    schedule = make_schedule(enabled=False)
    assert schedule.next_run_at is None
    services.schedules_run_due(now=FIRST - timedelta(minutes=30))
    assert not ExecutionRequest.objects.exists()
    schedule.enabled = True
    services.schedule_save(actor=people["admin"], schedule=schedule, now=FIRST + timedelta(hours=1))
    schedule.refresh_from_db()
    assert schedule.next_run_at == SECOND  # the passed Saturday is not "missed": it was off
    assert not ScheduledOccurrence.objects.exists()


def test_drill_without_target_goes_to_the_dr_site(make_schedule, sites):
    make_schedule(
        kind="drill",
        target_site=None,
        frequency="monthly",
        interval=3,
        weekdays=[],
        start_date=date(2025, 4, 1),
    )
    services.schedules_run_due(now=utc(2025, 4, 1, 0, 30))
    request = ExecutionRequest.objects.get()
    assert (request.kind, request.target_site_id) == ("drill", sites["west"].pk)


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        (
            {
                "frequency": "once",
                "weekdays": [],
                "start_date": date(2025, 3, 30),
                "at_time": time(1, 30),
            },
            "at_time",
            "does not exist",
        ),
        ({"frequency": "monthly", "weekdays": [], "month_day": 31}, "month_day", "29-31"),
        ({"target_site": None}, "target_site", "Required"),
        ({"auto_start_drills": True}, "auto_start_drills", "Only drills"),
        ({"kind": "drill", "auto_start_drills": True}, "auto_start_drills", "does not allow"),
        ({"lead_minutes": 300}, "lead_minutes", "At most 240"),
        ({"change_ticket_template": ""}, "change_ticket_template", ""),
        ({"change_ticket_template": "X{date}"}, "change_ticket_template", ""),
        ({"reason_template": "{scope.__class__}"}, "reason_template", "Unknown placeholder"),
        ({"reason_template": "{nope}"}, "reason_template", "Unknown placeholder"),
        (
            {"frequency": "once", "weekdays": [], "start_date": date(2025, 3, 1)},
            "start_date",
            "No occurrence",
        ),
        ({"until_date": date(2025, 3, 20)}, "until_date", "No occurrence"),
        ({"resource": None}, "resource", "exactly one"),
    ],
)
def test_invalid_schedules_are_refused_with_field_errors(make_schedule, fields, field, text):
    errors = _errors(lambda: make_schedule(**fields))
    assert field in errors, errors
    assert text in " ".join(errors[field])
    assert not Schedule.objects.exists()


def test_creator_must_be_an_operator(make_schedule, people):
    errors = _errors(lambda: make_schedule(created_by=people["it"]))
    assert "operator role" in errors["created_by"][0]


def test_delete_is_refused_once_occurrences_exist(make_schedule, people):
    schedule = make_schedule()
    services.schedules_run_due(now=FIRST + timedelta(minutes=1))  # one missed occurrence
    assert (
        "disable it"
        in _errors(lambda: services.schedule_delete(actor=people["admin"], schedule=schedule))[
            "enabled"
        ][0]
    )
    fresh = make_schedule(name="other")
    services.schedule_delete(actor=people["admin"], schedule=fresh)
    assert AuditEvent.objects.filter(action="schedule.deleted", object_name="other").exists()


def test_task_binds_the_worker_context_and_uses_real_time(make_schedule):
    now = timezone.now().replace(second=0, microsecond=0)
    planned = now + timedelta(hours=1)
    make_schedule(
        now=timezone.now(),
        time_zone="UTC",
        frequency="once",
        weekdays=[],
        start_date=planned.date(),
        at_time=planned.time(),
    )
    assert tasks.run_schedules()["requested"] == 1
    assert tasks.run_schedules()["requested"] == 0
    request = ExecutionRequest.objects.get()
    created = AuditEvent.objects.get(action="request.created", object_id=str(request.pk))
    assert created.context == "worker"


def test_minute_job_is_registered():
    from django_q.models import Schedule as QSchedule

    from executions.scheduled_start import SCHEDULE_NAME, TASK
    from executions.scheduled_start import ensure_schedule as ensure_start

    ensure_schedule()
    ensure_start()
    assert QSchedule.objects.get(name=SCHEDULES_SCHEDULE_NAME).func == SCHEDULES_TASK
    assert QSchedule.objects.get(name=SCHEDULE_NAME).func == TASK
    import importlib

    module, _, name = TASK.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


# --- admin -----------------------------------------------------------------------------------


@pytest.fixture
def admin_client_bc(client, people):
    client.force_login(people["admin"])
    return client


def _form(people, resource, sites, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "saturday switchover",
        "description": "",
        "enabled": "on",
        "kind": "switchover",
        "resource": resource.pk,
        "group": "",
        "target_site": sites["west"].pk,
        "created_by": people["op"].pk,
        "reason_template": "Planned {kind} of {scope} at {planned_local}",
        "change_ticket_template": "CHG{date}",
        "time_zone": "Europe/London",
        "frequency": "weekly",
        "start_date": "2099-03-07",
        "at_time": "02:00",
        "interval": 1,
        "weekdays": ["SA"],
        "month_day": "",
        "until_date": "",
        "lead_minutes": 120,
        "occurrences-TOTAL_FORMS": 0,
        "occurrences-INITIAL_FORMS": 0,
        "occurrences-MIN_NUM_FORMS": 0,
        "occurrences-MAX_NUM_FORMS": 0,
    }
    data.update(overrides)
    return data


def test_admin_add_is_audited_and_pages_load(
    admin_client_bc, default_policies, people, resource, sites
):
    url = reverse("admin:approvals_schedule_add")
    response = admin_client_bc.post(url, _form(people, resource, sites))
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = Schedule.objects.get()
    assert schedule.next_local() == "2099-03-07 02:00 GMT (Europe/London)"
    assert AuditEvent.objects.filter(action="schedule.created").exists()
    services.schedules_run_due(now=schedule.next_run_at + timedelta(minutes=1))  # a missed one
    occurrence = ScheduledOccurrence.objects.get()
    for name, args in [
        ("approvals_schedule_changelist", []),
        ("approvals_schedule_change", [schedule.pk]),
        ("approvals_schedule_history", [schedule.pk]),
        ("approvals_scheduledoccurrence_changelist", []),
        ("approvals_scheduledoccurrence_change", [occurrence.pk]),
    ]:
        page = admin_client_bc.get(reverse(f"admin:{name}", args=args))
        assert page.status_code == 200, name
    change = admin_client_bc.get(reverse("admin:approvals_schedule_change", args=[schedule.pk]))
    assert "2099-03-14 02:00 GMT (Europe/London)" in change.content.decode()  # upcoming


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        (
            {"frequency": "once", "weekdays": [], "start_date": "2099-03-29", "at_time": "01:30"},
            "01:30 does not exist on 2099-03-29 in Europe/London",
        ),
        ({"time_zone": "Europe/Londn"}, "is not an IANA time zone name"),
        ({"created_by": ""}, "This field is required"),
        ({"lead_minutes": 999}, "At most 240"),
    ],
)
def test_admin_refuses_invalid_times_with_a_validation_error(
    admin_client_bc, default_policies, people, resource, sites, overrides, text
):
    url = reverse("admin:approvals_schedule_add")
    response = admin_client_bc.post(url, _form(people, resource, sites, **overrides))
    assert response.status_code == 200  # the form again, with the error; never a 500
    assert text in response.content.decode()
    assert not Schedule.objects.exists()


def test_drill_without_target_goes_to_the_home_site_while_the_resource_is_away(
    make_schedule, sites, resource
):
    # A switchover left in place: the primary runs at west, so the standby to drill is east.
    type(resource).objects.filter(pk=resource.pk).update(current_site=sites["west"])
    make_schedule(
        kind="drill",
        target_site=None,
        frequency="monthly",
        interval=3,
        weekdays=[],
        start_date=date(2025, 4, 1),
    )
    services.schedules_run_due(now=utc(2025, 4, 1, 0, 30))
    request = ExecutionRequest.objects.get()
    assert (request.kind, request.target_site_id) == ("drill", sites["east"].pk)
