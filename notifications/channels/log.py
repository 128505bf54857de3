"""The log channel: one structured line per delivery on ``notifications.delivery`` (demo)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from notifications.channels import Message

logger = logging.getLogger("notifications.delivery")


def send(message: Message, route: Any, secret: Mapping[str, str]) -> str:
    logger.info(
        message.title,
        extra={
            "notification_kind": message.kind,
            "action": message.action,
            "dedup_key": message.dedup_key,
            "severity": message.severity,
            "route": getattr(route, "name", ""),
            "event_id": message.event_id,
            "resource_id": message.resource_id,
            "reasons": list(message.lines),
        },
    )
    return "written to the log"
