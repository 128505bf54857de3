"""``notify``: one structured log line and a recorded event, never an exception for the caller."""

from __future__ import annotations

import json
import logging

import pytest

from bcservice.logging import JsonFormatter
from notifications.models import Delivery, Event
from notifications.services import notify


@pytest.mark.django_db
def test_notify_records_the_event_and_writes_one_structured_line(caplog):
    with caplog.at_level(logging.INFO, logger="notifications"):
        notify(
            "request.approved",
            subject="Request #7 approved",
            tier=1,
            environment="production",
            payload={"request": 7, "password": "hunter2-xyz"},
            resource_id=3,
        )
    (record,) = [r for r in caplog.records if r.name == "notifications"]
    assert record.getMessage() == "Request #7 approved"
    line = json.loads(JsonFormatter().format(record))
    assert line["notification_kind"] == "request.approved" and line["channel"] == "log"
    assert (line["tier"], line["environment"], line["resource_id"]) == (1, "production", 3)
    assert line["payload"] == {"request": 7, "password": "***"}
    event = Event.objects.get()
    assert (event.kind, event.subject, event.tier, event.resource_id) == (
        "request.approved",
        "Request #7 approved",
        1,
        3,
    )
    assert event.payload == {"request": 7, "password": "***"}  # secret-looking keys redacted
    assert line["event_id"] == event.pk and line["deliveries"] == 0
    assert not Delivery.objects.exists()  # no route: the log line is the only channel


@pytest.mark.django_db
def test_a_broken_logger_does_not_raise(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("channel down")

    monkeypatch.setattr(logging.getLogger("notifications"), "info", boom)
    notify("x", subject="s", tier=None, environment=None, payload={})  # no exception
    assert Event.objects.filter(kind="x").exists()


def test_a_broken_store_still_logs_and_does_not_raise(caplog):
    # No database access at all here: recording fails, the log line still goes out.
    with caplog.at_level(logging.INFO, logger="notifications"):
        notify("request.created", subject="Request #8", tier=2, environment="test", payload={})
    lines = [r for r in caplog.records if r.name == "notifications"]
    assert [r.levelno for r in lines] == [logging.ERROR, logging.INFO]
    assert lines[1].getMessage() == "Request #8" and lines[1].event_id is None
