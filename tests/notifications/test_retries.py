"""A failing channel is retried with exponential backoff and recorded (sanitized), and never
holds up collection: ``notify`` only records and enqueues, the worker delivers."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from connectors.collection import collect_resource
from notifications import delivery, tasks
from notifications.models import Delivery, Event
from notifications.services import notify

pytestmark = pytest.mark.django_db

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef"


@pytest.mark.parametrize(
    "attempts, base", [(1, 30), (2, 60), (3, 120), (6, 960), (8, 3600), (20, 3600)]
)
def test_backoff_doubles_with_jitter_and_a_cap(attempts, base):
    waits = [delivery.backoff_seconds(attempts) for _ in range(50)]
    assert all(base * 0.9 <= w <= base * 1.1 for w in waits)


def _one(**filters):
    return Delivery.objects.get(**filters)


def test_500_then_success_is_retried_with_backoff(make_route, pagerduty, status_change, settings):
    settings.BC_NOTIFY_RETRY_BASE_SECONDS = 30
    make_route("pager", "pagerduty", kinds="status.*")
    pagerduty.statuses = [500, 503]
    pagerduty.error_body = f'{{"message": "bad key {ROUTING_KEY}"}}'.encode()
    status_change(5, "red", "ok", "lag_red")
    d = _one()
    start = timezone.now()
    assert delivery.attempt(d.pk, now=start) == "retrying"
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("retrying", 1)
    assert d.last_error.startswith("HTTP 500 from the receiver")
    assert ROUTING_KEY not in d.last_error and "***" in d.last_error  # the key is scrubbed
    assert 27 <= (d.next_attempt_at - start).total_seconds() <= 33
    # Not due yet: neither the task nor the sweep sends it.
    assert delivery.attempt(d.pk, now=start + timedelta(seconds=20)) == "not due"
    with time_machine.travel(d.next_attempt_at + timedelta(seconds=1), tick=False):
        assert tasks.retry_due()["retrying"] == 1
    second = d.next_attempt_at + timedelta(seconds=1)
    d.refresh_from_db()
    assert d.attempts == 2 and 54 <= (d.next_attempt_at - second).total_seconds() <= 66
    with time_machine.travel(d.next_attempt_at + timedelta(seconds=1), tick=False):
        assert tasks.retry_due()["delivered"] == 1
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error) == ("delivered", 3, "")
    assert len(pagerduty.requests) == 3


def test_connection_refused_is_recorded_and_gives_up_after_max_attempts(
    make_route, settings, monkeypatch, status_change
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    settings.BC_PAGERDUTY_EVENTS_URL = f"http://127.0.0.1:{port}/v2/enqueue"
    settings.BC_NOTIFY_MAX_ATTEMPTS = 3
    monkeypatch.setenv("BC_TEST_PD", f'{{"routing_key": "{ROUTING_KEY}"}}')
    make_route("pager", "pagerduty", kinds="status.*")
    status_change(6, "red", "lost", "primary_unreachable")
    d = _one()
    now = timezone.now()
    outcomes = []
    for _ in range(3):
        outcomes.append(delivery.attempt(d.pk, now=now))
        d.refresh_from_db()
        now = (d.next_attempt_at or now) + timedelta(seconds=1)
    assert outcomes == ["retrying", "retrying", "failed"]
    assert (d.status, d.attempts, d.next_attempt_at) == ("failed", 3, None)
    assert d.last_error == "connection failed (ConnectionRefusedError)"
    assert delivery.attempt(d.pk, now=now + timedelta(days=1)) == "not due"  # failed for good


def test_a_rejected_event_is_not_retried(make_route, pagerduty, status_change):
    make_route("pager", "pagerduty", kinds="status.*")
    pagerduty.statuses = [400]
    status_change(7, "red", "ok", "lag_red")
    assert delivery.attempt(_one().pk) == "failed"
    assert _one().last_error.startswith("HTTP 400")


def test_rate_limited_is_retried(make_route, pagerduty, status_change):
    make_route("pager", "pagerduty", kinds="status.*")
    pagerduty.statuses = [429]
    status_change(7, "red", "ok", "lag_red")
    assert delivery.attempt(_one().pk) == "retrying"


def test_a_missing_channel_secret_is_retried_without_leaking(
    make_route, monkeypatch, status_change
):
    make_route("pager", "pagerduty", kinds="status.*", secret_ref="env:BC_TEST_NOT_SET")
    monkeypatch.delenv("BC_TEST_NOT_SET", raising=False)
    status_change(8, "red", "ok", "lag_red")
    assert delivery.attempt(_one().pk) == "retrying"
    assert "BC_TEST_NOT_SET is not set" in _one().last_error


def test_a_deleted_or_disabled_route_stops_its_deliveries(make_route, status_change):
    gone = make_route("gone", "log", kinds="status.*")
    off = make_route("off", "log", kinds="status.*")
    status_change(9, "red", "ok", "lag_red")
    gone.delete()
    off.enabled = False
    off.save()
    by_route = {d.route_name: delivery.attempt(d.pk) for d in Delivery.objects.all()}
    assert by_route == {"gone": "failed", "off": "refused"}


def test_the_sweep_picks_up_a_delivery_whose_task_was_lost(make_route, status_change):
    make_route("demo", "log", kinds="status.*")
    status_change(10, "red", "ok", "lag_red")
    d = _one()
    assert delivery.due_ids(timezone.now(), 10) == []  # its own task is expected to run first
    later = timezone.now() + timedelta(seconds=delivery.PENDING_GRACE_SECONDS + 1)
    assert delivery.due_ids(later, 10) == [d.pk]
    # A worker that died while sending: its claim expires and the sweep takes over.
    assert delivery.claim(d.pk, timezone.now())
    assert delivery.due_ids(later, 10) == []
    expired = timezone.now() + timedelta(seconds=delivery.LEASE_SECONDS + 1)
    assert delivery.due_ids(expired, 10) == [d.pk]
    assert delivery.attempt(d.pk, now=expired) == "delivered"


def test_collection_is_not_held_up_by_a_failing_channel(
    make_route, make_resource, pagerduty, monkeypatch, django_capture_on_commit_callbacks
):
    pagerduty.statuses = [500]
    make_route("pager", "pagerduty", kinds="status.*")
    # A target whose secret cannot be resolved: collection reports loss of visibility at once.
    monkeypatch.delenv("BC_TEST_NO_SUCH_SECRET", raising=False)
    resource = make_resource(
        "orders-db",
        platform="mongodb",
        secret_ref="env:BC_TEST_NO_SUCH_SECRET",
        connection={
            "hosts": ["127.0.0.1:9"],
            "replica_set": "rs0",
            "primary_member": "127.0.0.1:9",
            "dr_member": "127.0.0.1:9",
        },
    )
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        status = collect_resource(resource.pk)
    elapsed = time.monotonic() - started
    assert status.visibility == "lost"
    assert elapsed < 5, elapsed
    assert pagerduty.requests == []  # nothing was sent from the collector
    d = _one()
    assert d.status == "pending" and d.action == "trigger"
    queued = [task for task in OrmQ.objects.all() if task.func() == "notifications.tasks.deliver"]
    assert [task.task["args"] for task in queued] == [(d.pk,)]
    # The worker's task meets the failing receiver: recorded, retried later.
    assert tasks.deliver(d.pk) == "retrying"
    assert _one().last_error.startswith("HTTP 500")


def test_with_the_orm_broker_tasks_are_queued_in_the_deliveries_transaction(make_route):
    make_route("demo", "log", kinds="request.*")
    notify("request.created", subject="r", tier=1, environment="test", payload={})
    (task,) = OrmQ.objects.all()  # in the same transaction: no commit hook needed
    assert task.task["args"] == (Delivery.objects.get().pk,)


def test_with_redis_tasks_are_pushed_after_the_commit(
    make_route, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from notifications import services

    settings.Q_CLUSTER = {k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}
    pushed = []
    monkeypatch.setattr(services, "enqueue", pushed.append)
    make_route("demo", "log", kinds="request.*")
    with django_capture_on_commit_callbacks(execute=True):
        notify("request.created", subject="r", tier=1, environment="test", payload={})
        assert pushed == []
    assert pushed == [[Delivery.objects.get().pk]]


def test_the_retry_schedule_exists_after_migrate():
    schedule = Schedule.objects.get(name=tasks.RETRY_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "notifications.tasks.retry_due",
        Schedule.MINUTES,
        1,
    )
    tasks.ensure_schedules()
    assert Schedule.objects.filter(name=tasks.RETRY_SCHEDULE).count() == 1


def test_prune_keeps_the_events_of_open_alerts(make_route, status_change):
    make_route("demo", "log", kinds="status.*")
    status_change(11, "red", "ok", "lag_red")
    status_change(12, "red", "ok", "lag_red")
    status_change(11, "green", "ok")  # 11 recovered; 12 is still red (its alert is open)
    Delivery.objects.update(status="delivered")
    later = timezone.now() + timedelta(days=91)
    assert delivery.prune(now=later) == 4  # 11's two events and their deliveries
    assert list(Event.objects.values_list("resource_id", "kind")) == [(12, "status.red")]


def test_admin_retry_now_requeues_a_failed_delivery(client, make_user, make_route, status_change):
    from audit.models import AuditEvent

    make_route("demo", "log", kinds="status.*")
    status_change(13, "red", "ok", "lag_red")
    d = _one()
    Delivery.objects.filter(pk=d.pk).update(status="failed", attempts=8, last_error="gave up")
    client.force_login(make_user("admin", username="retrier"))
    response = client.post(
        "/admin/notifications/delivery/",
        {"action": "retry_now", "_selected_action": [d.pk]},
    )
    assert response.status_code == 302
    d.refresh_from_db()
    assert d.status == "retrying" and d.next_attempt_at is not None
    assert AuditEvent.objects.filter(
        action="notificationdelivery.retry_requested", actor_name="retrier"
    ).exists()
    assert delivery.attempt(d.pk) == "delivered"


def test_prune_keeps_events_with_unsettled_deliveries(make_route):
    make_route("demo", "log", kinds="request.*")
    notify("request.created", subject="r", tier=1, environment="test", payload={})
    later = timezone.now() + timedelta(days=91)
    assert delivery.prune(now=later) == 0  # still pending
    Delivery.objects.update(status="failed")
    assert delivery.prune(now=later) == 2
