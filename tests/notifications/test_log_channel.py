"""The log channel of notifications.notify: one structured log line, never an exception."""

from __future__ import annotations

import json
import logging

from bcservice.logging import JsonFormatter
from notifications.services import notify


def test_notify_writes_one_structured_line(caplog):
    with caplog.at_level(logging.INFO, logger="notifications"):
        notify(
            "request.approved",
            subject="Request #7 approved",
            tier=1,
            environment="production",
            payload={"request": 7},
            resource_id=3,
        )
    (record,) = caplog.records
    assert record.name == "notifications" and record.getMessage() == "Request #7 approved"
    line = json.loads(JsonFormatter().format(record))
    assert line["notification_kind"] == "request.approved" and line["channel"] == "log"
    assert (line["tier"], line["environment"], line["resource_id"]) == (1, "production", 3)
    assert line["payload"] == {"request": 7}


def test_a_broken_channel_does_not_raise(monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("channel down")

    monkeypatch.setattr(logging.getLogger("notifications"), "info", boom)
    notify("x", subject="s", tier=None, environment=None, payload={})  # no exception
