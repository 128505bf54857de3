"""Two workers running the schedule jobs at the same instant, on PostgreSQL, from threads with
their own connections: one request per occurrence, whichever way they interleave.

Two levels are raced: the whole job (the schedule row lock sorts it out), and two claims of the
same occurrence from stale copies of the schedule, which only the unique (schedule, planned_at)
constraint can stop. And two planned-time start jobs on one approved drill start it once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import transaction

from approvals import services
from approvals.models import ExecutionRequest, Schedule, ScheduledOccurrence
from approvals.services import schedule_runs
from audit.selectors import verify_chain
from tests.approvals.test_concurrency import race
from tests.approvals.test_schedules_autostart import (  # noqa: F401  (fixtures)
    allow_scheduled_start,
    drill,
    planned,
    script,
)

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]
ROUNDS = 6
PLANNED = datetime(2025, 3, 29, 2, tzinfo=UTC)
SAVED_AT = datetime(2025, 3, 26, 12, tzinfo=UTC)


def _schedule(people, sites, resource, n: int) -> Schedule:
    return services.schedule_save(
        actor=people["admin"],
        schedule=Schedule(
            name=f"race-{n}",
            kind="switchover",
            resource=resource,
            target_site=sites["west"],
            created_by=people["op"],
            change_ticket_template="CHG{date}",
            time_zone="Europe/London",
            frequency="weekly",
            weekdays=["SA"],
            start_date=date(2025, 3, 1),
            at_time=time(2, 0),
        ),
        now=SAVED_AT,
    )


def test_two_jobs_at_once_create_one_request_per_occurrence(
    default_policies, people, sites, resource
):
    now = PLANNED - timedelta(minutes=60)
    for n in range(ROUNDS):
        _schedule(people, sites, resource, n)
    results = race(
        lambda: services.schedules_run_due(now=now), lambda: services.schedules_run_due(now=now)
    )
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["requested"] for r in results) == ROUNDS
    assert ExecutionRequest.objects.count() == ROUNDS
    assert ScheduledOccurrence.objects.filter(state="requested").count() == ROUNDS
    assert verify_chain().ok


def test_racing_claims_of_one_occurrence_create_one_request(
    default_policies, people, sites, resource
):
    now = PLANNED - timedelta(minutes=60)
    for n in range(ROUNDS):
        schedule = _schedule(people, sites, resource, n)

        def claim(pk: int = schedule.pk) -> ExecutionRequest | None:
            stale = Schedule.objects.select_related("created_by", "resource").get(pk=pk)
            with transaction.atomic():
                return schedule_runs.occurrence_create_request(stale, PLANNED, now=now)

        results = race(claim, claim)
        made = [r for r in results if isinstance(r, ExecutionRequest)]
        assert len(made) == 1 and results.count(None) == 1, results
        assert ExecutionRequest.objects.filter(scheduled_occurrence__schedule=schedule).count() == 1
    assert ExecutionRequest.objects.count() == ROUNDS
    assert verify_chain().ok


def test_two_start_jobs_at_once_start_a_scheduled_drill_once(drill, people, planned):  # noqa: F811
    from approvals.models import Approval
    from executions import scheduled_start
    from executions.models import Execution

    occurrence = drill()
    for who in ("it", "biz"):
        services.request_approve(occurrence.request, actor=people[who], comment="ok")
    assert Approval.objects.count() == 2
    at = planned + timedelta(minutes=1)
    results = race(
        lambda: scheduled_start.start_due(now=at), lambda: scheduled_start.start_due(now=at)
    )
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["started"] for r in results) == 1
    assert sum(r["not_started"] for r in results) == 0
    assert Execution.objects.filter(request=occurrence.request).count() == 1
    occurrence.refresh_from_db()
    assert occurrence.state == "started"
    assert verify_chain().ok
