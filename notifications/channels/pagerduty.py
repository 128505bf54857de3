"""PagerDuty Events API v2: ``trigger`` when a condition opens, ``resolve`` when it ends.

The body is the documented Events v2 shape: ``routing_key``, ``event_action``, ``dedup_key`` and,
for a trigger, ``payload`` with ``summary``, ``source``, ``severity`` (critical, error, warning,
info), ``timestamp``, ``component``, ``group``, ``class`` and ``custom_details``. The dedup key is
per resource and condition (``bcservice/resource/42/red``), so PagerDuty keeps one incident per
open condition and the resolve closes exactly that one; other events use one key per event.
PagerDuty answers 202 Accepted; 429 and 5xx are retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from notifications.channels import ChannelError, Message
from notifications.channels.http import post_json
from notifications.choices import Action

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries; keep the start readable


def event_body(message: Message, routing_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if message.action == Action.RESOLVE else "trigger",
        "dedup_key": message.dedup_key,
    }
    if body["event_action"] == "trigger":
        body["payload"] = {
            "summary": message.subject[:_SUMMARY_MAX],
            "source": message.source,
            "severity": message.severity,
            "timestamp": message.created_at.isoformat(),
            "component": message.source,
            "group": message.environment or "unknown",
            "class": message.kind,
            "custom_details": {
                "reasons": list(message.lines),
                "tier": message.tier,
                "environment": message.environment,
                "event_id": message.event_id,
                "resource_id": message.resource_id,
            },
        }
        body["client"] = "bcservice"
    return body


def send(message: Message, route: Any, secret: Mapping[str, str]) -> str:
    routing_key = (secret.get("routing_key") or secret.get("integration_key") or "").strip()
    if not routing_key:
        raise ChannelError("the route's secret holds no routing_key", permanent=True)
    url = getattr(settings, "BC_PAGERDUTY_EVENTS_URL", "") or DEFAULT_EVENTS_URL
    body = event_body(message, routing_key)
    status, _ = post_json(url, body)
    return f"PagerDuty {body['event_action']}: HTTP {status}"
