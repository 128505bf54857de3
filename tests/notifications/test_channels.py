"""Each channel against a local receiver: PagerDuty Events v2 and Slack over HTTP on loopback,
e-mail through a real SMTP server (aiosmtpd), the log channel, and gds_notification."""

from __future__ import annotations

import logging
import sys
import types
from datetime import datetime

import pytest

from notifications.models import Delivery, Event
from notifications.services import notify

pytestmark = pytest.mark.django_db

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef"


def test_pagerduty_trigger_and_resolve_have_the_events_v2_shape(
    make_route, pagerduty, status_change, deliver_all
):
    make_route(
        "pager", "pagerduty", kinds="status.*", environments=["production"], production_on_call=True
    )
    status_change(42, "red", "ok", "lag_red", "rpo_breach", tier=1, name="orders-db")
    assert deliver_all() == ["delivered"]
    (trigger,) = pagerduty.bodies()
    assert pagerduty.requests[0]["path"] == "/v2/enqueue"
    assert pagerduty.requests[0]["headers"]["Content-Type"] == "application/json"
    assert set(trigger) == {"routing_key", "event_action", "dedup_key", "payload", "client"}
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "bcservice/resource/42/red"
    payload = trigger["payload"]
    assert payload["summary"] == "orders-db: DR readiness RED"
    assert payload["source"] == "orders-db"
    assert payload["severity"] == "critical"  # tier 1
    assert payload["class"] == "status.red" and payload["group"] == "production"
    datetime.fromisoformat(payload["timestamp"])
    assert payload["custom_details"]["reasons"] == ["lag_red message", "rpo_breach message"]

    status_change(42, "green", "ok")
    assert deliver_all() == ["delivered"]
    resolve = pagerduty.bodies()[1]
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "bcservice/resource/42/red",
    }
    detail = Delivery.objects.order_by("pk").values_list("detail", flat=True)
    assert list(detail) == ["PagerDuty trigger: HTTP 202", "PagerDuty resolve: HTTP 202"]


@pytest.mark.parametrize("tier, severity", [(1, "critical"), (2, "error"), (3, "warning")])
def test_pagerduty_severity_follows_the_tier(
    make_route, pagerduty, status_change, deliver_all, tier, severity
):
    make_route("pager", "pagerduty", kinds="status.*")
    status_change(7, "red", "lost", "primary_unreachable", tier=tier, environment="test")
    deliver_all()
    (body,) = pagerduty.bodies()
    assert body["payload"]["severity"] == severity
    assert body["dedup_key"] == "bcservice/resource/7/visibility_lost"


def test_other_events_get_one_dedup_key_per_event(make_route, pagerduty, deliver_all):
    make_route("pager", "pagerduty", kinds="breakglass.opened")
    notify(
        "breakglass.opened",
        subject="Break-glass opened by ann: outage",
        tier=1,
        environment="production",
        payload={"grant": 3, "reason": "outage"},
        resource_id=5,
    )
    deliver_all()
    (body,) = pagerduty.bodies()
    event = Event.objects.get()
    assert body["dedup_key"] == f"bcservice/event/{event.pk}"
    assert body["payload"]["severity"] == "warning"
    assert body["payload"]["source"] == "bcservice"


def test_slack_webhook_gets_text_and_blocks(make_route, slack, status_change, deliver_all):
    make_route("chat", "slack", kinds="status.*", tiers=[3])
    status_change(9, "red", "ok", "replication_stopped", tier=3, name="a<b>&c", environment="test")
    assert deliver_all() == ["delivered"]
    (body,) = slack.bodies()
    assert slack.requests[0]["path"] == "/services/T000/B000/XXXXsecretXXXXtoken"
    assert body["text"] == ":warning: a<b>&c: DR readiness RED"
    section, context = body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert (
        section["text"]["text"]
        == "*:warning: a&lt;b&gt;&amp;c: DR readiness RED*\nreplication_stopped message"
    )
    assert context["elements"][0]["text"].startswith("status.red · tier 3 · test · #")
    status_change(9, "green", "ok", tier=3, environment="test", name="a<b>&c")
    deliver_all()
    assert slack.bodies()[1]["text"].startswith(":white_check_mark: RESOLVED: a<b>&c: recovered")


def test_email_through_a_real_smtp_server(make_route, smtp, deliver_all):
    make_route("mail", "email", kinds="request.*", target="dba@example.com, ops@example.com")
    notify(
        "request.approved",
        subject="Request #12 approved: switchover of orders-db",
        tier=2,
        environment="production",
        payload={"request": 12, "kind": "switchover", "scope": "orders-db"},
    )
    assert deliver_all() == ["delivered"]
    (received,) = smtp.messages
    assert received["rcpt"] == ["dba@example.com", "ops@example.com"]
    msg = received["msg"]
    assert msg["Subject"] == "[bcservice] Request #12 approved: switchover of orders-db"
    assert msg["From"] == "bcservice@example.test" and msg["X-BC-Kind"] == "request.approved"
    body = msg.get_payload(decode=True).decode()
    assert "kind: switchover" in body and "scope: orders-db" in body


def test_email_server_down_is_retried(make_route, smtp, settings, deliver_all):
    make_route("mail", "email", target="dba@example.com")
    settings.EMAIL_PORT = 9  # nothing listens on the discard port
    notify("request.created", subject="r", tier=1, environment="test", payload={})
    assert deliver_all() == ["retrying"]
    delivery = Delivery.objects.get()
    assert delivery.last_error.startswith("mail server unreachable")


def test_log_channel_writes_one_line_per_delivery(make_route, status_change, deliver_all, caplog):
    make_route("demo", "log", kinds="status.*")
    with caplog.at_level(logging.INFO, logger="notifications.delivery"):
        status_change(3, "red", "lost", "primary_unreachable", tier=2)
        deliver_all()
    (line,) = [r for r in caplog.records if r.name == "notifications.delivery"]
    assert line.getMessage() == "orders-db: loss of visibility, DR readiness cannot be shown"
    assert (line.action, line.dedup_key, line.route) == (
        "trigger",
        "bcservice/resource/3/visibility_lost",
        "demo",
    )


def test_gds_without_the_library_falls_back_to_the_log(
    make_route, deliver_all, caplog, monkeypatch
):
    monkeypatch.setitem(sys.modules, "gds_notification", None)  # import fails
    make_route("gds", "gds", target="database-alerts")
    with caplog.at_level(logging.INFO, logger="notifications.delivery"):
        notify(
            "execution.failed",
            subject="switchover FAILED",
            tier=1,
            environment="production",
            payload={"execution": 4},
        )
        assert deliver_all() == ["delivered"]
    assert Delivery.objects.get().detail.startswith("gds_notification is not installed")
    assert [r.getMessage() for r in caplog.records if r.name == "notifications.delivery"] == [
        "switchover FAILED"
    ]


class FakeGdsProvider:
    """A provider with the library's shape; records what it was asked to send."""

    sent: list = []
    fail: bool = False

    def __init__(self, route, secret):
        self.route, self.secret = route, secret

    def send(self, notification):
        FakeGdsProvider.sent.append(notification)
        status = types.SimpleNamespace(value="failed" if self.fail else "sent")
        return types.SimpleNamespace(status=status, error_message="provider refused")


def gds_factory(route, secret):
    return FakeGdsProvider(route, secret)


@pytest.fixture
def fake_gds(monkeypatch, settings):
    """Modules shaped like gds_notification's (Notification, NotificationPriority)."""
    base = types.ModuleType("gds_notification.providers.base")

    class Notification:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    base.Notification = Notification
    base.NotificationPriority = types.SimpleNamespace(
        LOW="low", NORMAL="normal", HIGH="high", CRITICAL="critical"
    )
    monkeypatch.setitem(sys.modules, "gds_notification", types.ModuleType("gds_notification"))
    monkeypatch.setitem(
        sys.modules, "gds_notification.providers", types.ModuleType("gds_notification.providers")
    )
    monkeypatch.setitem(sys.modules, "gds_notification.providers.base", base)
    settings.BC_GDS_PROVIDER = f"{__name__}:gds_factory"
    FakeGdsProvider.sent, FakeGdsProvider.fail = [], False
    return FakeGdsProvider


def test_gds_library_is_used_when_installed(make_route, fake_gds, status_change, deliver_all):
    make_route("gds", "gds", kinds="status.*", target="database-alerts")
    status_change(8, "red", "ok", "lag_red", tier=1)
    assert deliver_all() == ["delivered"]
    (sent,) = fake_gds.sent
    assert (sent.recipient, sent.priority, sent.alert_name) == (
        "database-alerts",
        "critical",
        "status.red",
    )
    assert sent.idempotency_id == "bcservice/resource/8/red" and sent.db_instance_id == 8
    assert Delivery.objects.get().detail == "gds_notification: sent"
    fake_gds.fail = True
    status_change(8, "green", "ok")
    assert deliver_all() == ["retrying"]
    assert (
        Delivery.objects.order_by("-pk").first().last_error == "gds_notification: provider refused"
    )
