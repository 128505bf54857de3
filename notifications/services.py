"""Delivering notifications. The only entry point is ``notify``; keep its signature stable.

The log channel writes one structured line per notification to the ``notifications`` logger,
which the JSON log formatter turns into a searchable record. Delivery never raises into the
caller: callers run it in ``transaction.on_commit`` after their change is already durable, and
a broken channel must not make a committed change look failed.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("notifications")


def notify(
    kind: str,
    *,
    subject: str,
    tier: int | None,
    environment: str | None,
    payload: dict[str, Any],
    resource_id: int | None = None,
) -> None:
    """Send one notification of ``kind`` (e.g. "request.approved", "breakglass.opened")."""
    try:
        logger.info(
            subject,
            extra={
                "notification_kind": kind,
                "channel": "log",
                "tier": tier,
                "environment": environment,
                "resource_id": resource_id,
                "payload": payload,
            },
        )
    except Exception:  # a channel failure must not surface in the committed caller
        logger.exception("notification delivery failed", extra={"notification_kind": kind})
