"""Expiry on schedule (django-q2, every minute) with frozen time: an expired request cannot start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import Schedule

from approvals import services, tasks
from approvals.apps import EXPIRY_SCHEDULE_NAME, EXPIRY_TASK, ensure_schedule
from approvals.exceptions import RequestNotStartable, VoteConflict
from audit.models import AuditEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_schedule_is_registered_every_minute():
    schedule = Schedule.objects.get(name=EXPIRY_SCHEDULE_NAME)
    assert schedule.func == EXPIRY_TASK
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
    # re-running migrate neither duplicates it nor moves its next run
    next_run = schedule.next_run
    ensure_schedule()
    assert Schedule.objects.filter(name=EXPIRY_SCHEDULE_NAME).count() == 1
    assert Schedule.objects.get(name=EXPIRY_SCHEDULE_NAME).next_run == next_run


@pytest.mark.django_db
def test_pending_request_expires_after_the_validity(make_request, people):
    with time_machine.travel(T0, tick=False) as clock:
        request = make_request()
        assert request.expires_at == T0 + timedelta(hours=4)
        clock.move_to(T0 + timedelta(hours=3, minutes=59))
        assert tasks.expire_requests()["expired"] == 0
        clock.move_to(T0 + timedelta(hours=4))
        assert tasks.expire_requests()["expired"] == 1
    request.refresh_from_db()
    assert request.state == "expired"
    event = AuditEvent.objects.get(action="request.expired")
    assert event.actor_name == "worker" and event.context == "worker"


@pytest.mark.django_db
def test_approvals_stay_valid_for_the_window_from_the_earliest(make_request, people):
    with time_machine.travel(T0, tick=False) as clock:
        request = make_request()
        clock.move_to(T0 + timedelta(minutes=10))
        services.request_approve(request, actor=people["it"])
        clock.move_to(T0 + timedelta(hours=1))
        services.request_approve(request, actor=people["biz"])
        request.refresh_from_db()
        assert request.state == "approved"
        assert request.expires_at == T0 + timedelta(hours=4, minutes=10)
        clock.move_to(T0 + timedelta(hours=4, minutes=9))
        tasks.expire_requests()
        services.request_check_startable(request, actor=people["op"], now=timezone.now())
        clock.move_to(T0 + timedelta(hours=4, minutes=10, seconds=30))
        # before the sweep has run, the start check already refuses it
        with pytest.raises(RequestNotStartable) as err:
            services.request_check_startable(request, actor=people["op"], now=timezone.now())
        assert err.value.code == "expired"
        tasks.expire_requests()
    request.refresh_from_db()
    assert request.state == "expired"
    with pytest.raises(RequestNotStartable) as err:
        services.request_mark_running(request, actor=people["op"])
    assert err.value.code == "state"


@pytest.mark.django_db
def test_terminal_requests_are_left_alone(make_request, people):
    with time_machine.travel(T0, tick=False) as clock:
        request = make_request()
        services.request_cancel(request, actor=people["op"])
        clock.move_to(T0 + timedelta(days=2))
        assert tasks.expire_requests()["expired"] == 0
    request.refresh_from_db()
    assert request.state == "cancelled"


@pytest.mark.django_db
def test_sweep_expires_before_re_binding(make_request, people, resource):
    """A drifted request that is overdue expires; re-binding must not extend its life."""
    with time_machine.travel(T0, tick=False) as clock:
        request = make_request()
        resource.tier = 2
        resource.save()
        clock.move_to(T0 + timedelta(hours=5))
        result = tasks.expire_requests()
    assert result == {"refreshed": 0, "expired": 1, "skipped": 0}
    request.refresh_from_db()
    assert request.state == "expired"


@pytest.mark.django_db
def test_a_vote_cannot_revive_an_overdue_request(make_request, people):
    """Found by the PostgreSQL race test: the vote came before the sweep and approved it."""
    with time_machine.travel(T0, tick=False) as clock:
        request = make_request()
        clock.move_to(T0 + timedelta(hours=3))
        services.request_approve(request, actor=people["it"])
        clock.move_to(T0 + timedelta(hours=4, seconds=1))
        with pytest.raises(VoteConflict) as err:
            services.request_approve(request, actor=people["biz"])
        assert err.value.code == "expired"
    request.refresh_from_db()
    assert request.state == "pending_approval" and request.approvals.count() == 1


@pytest.mark.django_db
def test_sweep_command(make_request, capsys):
    from django.core.management import call_command

    with time_machine.travel(T0, tick=False) as clock:
        make_request()
        clock.move_to(T0 + timedelta(days=1))
        call_command("approvals_sweep")
    assert "expired 1, re-bound 0" in capsys.readouterr().out
