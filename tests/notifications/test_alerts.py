"""Alerts from status changes: one per open condition, not re-sent, resolved on recovery; and
monitoring's hook (inventory.status_services) that feeds them after its commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import status_services
from inventory.rules import Reason, RuleInput, SideInput
from notifications.models import Alert, Delivery, Event

pytestmark = pytest.mark.django_db


def _kinds():
    return list(Event.objects.order_by("pk").values_list("kind", flat=True))


def _deliveries():
    return list(Delivery.objects.order_by("pk").values_list("route_name", "action", "dedup_key"))


def test_an_open_condition_is_not_sent_again(make_route, status_change):
    make_route("pager", "pagerduty", kinds="status.*")
    status_change(1, "red", "ok", "lag_red")
    status_change(1, "red", "ok", "lag_red", "rpo_breach")  # same condition: nothing new
    status_change(1, "red", "lost", "primary_unreachable")  # a different condition
    status_change(1, "yellow", "lost", "observation_stale")  # still no visibility: nothing
    assert _kinds() == ["status.red", "status.visibility_lost"]
    assert _deliveries() == [
        ("pager", "trigger", "bcservice/resource/1/red"),
        ("pager", "trigger", "bcservice/resource/1/visibility_lost"),
        # the replaced condition's incident is resolved on the paging channel
        ("pager", "resolve", "bcservice/resource/1/red"),
    ]
    alert = Alert.objects.get(resource_id=1)
    assert (alert.condition, alert.dedup_key) == (
        "visibility_lost",
        "bcservice/resource/1/visibility_lost",
    )


def test_recovery_resolves_for_everyone_who_was_told(make_route, status_change):
    make_route("pager", "pagerduty", kinds="status.red, status.visibility_lost")
    make_route("chat", "slack", kinds="status.*")
    make_route("late", "log", kinds="status.red")  # created after the trigger: not told
    status_change(2, "red", "ok", "lag_red")
    Delivery.objects.filter(route_name="late").delete()
    status_change(2, "yellow", "ok", "lag_yellow")  # out of red while seen: recovered
    assert _kinds() == ["status.red", "status.recovered"]
    resolves = [d for d in _deliveries() if d[1] == "resolve"]
    assert sorted(resolves) == [
        ("chat", "resolve", "bcservice/resource/2/red"),
        ("pager", "resolve", "bcservice/resource/2/red"),
    ]
    assert Alert.objects.get(resource_id=2).condition == ""
    status_change(2, "green", "ok")  # nothing open any more: nothing to say
    assert _kinds() == ["status.red", "status.recovered"]


def test_a_switch_only_resolves_paging_channels(make_route, status_change):
    make_route("pager", "pagerduty", kinds="status.*")
    make_route("chat", "slack", kinds="status.*")
    status_change(3, "red", "ok", "lag_red")
    status_change(3, "red", "lost", "dr_unreachable")
    second = Event.objects.order_by("pk").last()
    rows = sorted(second.deliveries.values_list("route_name", "action", "dedup_key"))
    assert rows == [
        ("chat", "trigger", "bcservice/resource/3/visibility_lost"),
        ("pager", "resolve", "bcservice/resource/3/red"),
        ("pager", "trigger", "bcservice/resource/3/visibility_lost"),
    ]


def test_green_and_yellow_changes_send_nothing(make_route, status_change):
    make_route("all", "log")
    status_change(4, "green", "ok")
    status_change(4, "yellow", "ok", "lag_yellow")
    status_change(4, "green", "ok")
    assert not Event.objects.exists() and not Delivery.objects.exists()


HEALTHY = dict(
    primary=SideInput(role="primary"),
    dr=SideInput(role="standby"),
    replication="streaming",
    lag_seconds=0.2,
    lag_bytes=0,
    marker_available=True,
)


def _attempt(at, **changes):
    values = {"observed_at": at, **HEALTHY, **changes}
    return status_services.Attempt(at=at, input=RuleInput(**values))


def test_monitoring_notifies_after_its_commit(
    make_resource, make_route, django_capture_on_commit_callbacks
):
    make_route("pager", "pagerduty", kinds="status.*")
    resource = make_resource("orders-db", tier=1, environment="production")
    status_services.ensure_statuses()
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        status_services.apply_observation(resource.pk, _attempt(now), now=now)
    assert not Event.objects.exists()  # first status green: no alert
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lost = _attempt(
            now + timedelta(seconds=15),
            observed_at=None,
            primary=SideInput(outcome="connection_error", error="refused"),
        )
        status_services.apply_observation(resource.pk, lost, now=now + timedelta(seconds=15))
        assert not Event.objects.exists()  # nothing before the commit
    assert callbacks  # the hook ran after the commit
    (event,) = Event.objects.all()
    assert (event.kind, event.tier, event.environment, event.resource_id) == (
        "status.visibility_lost",
        1,
        "production",
        resource.pk,
    )
    assert event.subject == "orders-db: loss of visibility, DR readiness cannot be shown"
    assert event.payload["after"]["reasons"][0]["code"] == "primary_unreachable"
    assert Delivery.objects.get().status == "pending"  # the worker delivers, not monitoring


def test_a_new_resource_that_is_never_seen_alerts(
    make_resource, make_route, django_capture_on_commit_callbacks
):
    make_route("log", "log", kinds="status.*")
    resource = make_resource("new-db", tier=2, environment="staging")
    status_services.ensure_statuses()
    now = timezone.now()
    failed = status_services.Attempt(
        at=now, input=RuleInput(observed_at=None, failure=Reason("secret_unavailable", "no secret"))
    )
    with django_capture_on_commit_callbacks(execute=True):
        status_services.apply_observation(resource.pk, failed, now=now)
    # red/lost before (the default) and after: no status change, but the first status alerts.
    assert [e.kind for e in Event.objects.all()] == ["status.visibility_lost"]
