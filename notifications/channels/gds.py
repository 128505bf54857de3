"""Delivery through the organisation's ``gds_notification`` library, when it is installed.

The library is not on the public package index, so it is imported lazily. Its shape (as
published): ``gds_notification.providers.base.Notification(recipient, subject, body, priority,
alert_name, db_instance_id, idempotency_id, metadata)``, providers with ``send(notification)``
returning a ``NotificationResult`` (``status``, ``error_message``), and errors deriving from
``gds_notification.exceptions.GdsNotificationError``.

Which provider to use (SMTP, PagerDuty, MIR3, ...) is the deployment's choice:
``BC_GDS_PROVIDER = "package.module:factory"`` names a callable ``factory(route=, secret=)``
returning a provider. Without the library or without that setting, the message goes to the log
channel instead and the delivery says so: an alert is never dropped for want of a library.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.channels import ChannelError, Message
from notifications.channels import log as log_channel

_PRIORITY = {"critical": "CRITICAL", "error": "HIGH", "warning": "NORMAL", "info": "LOW"}
_PERMANENT = ("NotificationConfigError", "NotificationValidationError")


def _fallback(message: Message, route: Any, why: str) -> str:
    log_channel.send(message, route, {})
    return f"{why}: written to the log channel instead"


def send(message: Message, route: Any, secret: Mapping[str, str]) -> str:
    try:
        base = importlib.import_module("gds_notification.providers.base")
    except ImportError:
        return _fallback(message, route, "gds_notification is not installed")
    factory_path = (getattr(settings, "BC_GDS_PROVIDER", "") or "").strip()
    if not factory_path:
        return _fallback(message, route, "BC_GDS_PROVIDER is not set")
    try:
        provider = import_string(factory_path.replace(":", "."))(route=route, secret=secret)
    except Exception as exc:
        raise ChannelError(
            f"BC_GDS_PROVIDER failed: {type(exc).__name__}", permanent=True
        ) from None
    priorities = getattr(base, "NotificationPriority", None)
    notification = base.Notification(
        recipient=route.target,
        subject=message.title,
        body=message.text,
        priority=getattr(priorities, _PRIORITY[message.severity], None),
        alert_name=message.kind,
        db_instance_id=message.resource_id,
        idempotency_id=message.dedup_key,
        metadata={"action": message.action, "event_id": message.event_id, "tier": message.tier},
    )
    try:
        result = provider.send(notification)
    except Exception as exc:
        name = type(exc).__name__
        raise ChannelError(f"gds_notification: {name}", permanent=name in _PERMANENT) from None
    status = getattr(result, "status", None)
    status_text = str(getattr(status, "value", status) or "sent").lower()
    if status_text in ("failed", "error", "rejected"):
        # error_message is the provider's text: the worker scrubs secret values from it.
        raise ChannelError(
            f"gds_notification: {getattr(result, 'error_message', '') or status_text}"
        )
    return f"gds_notification: {status_text}"
