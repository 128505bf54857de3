"""django-q2 tasks of notifications: deliver one delivery, and the retry sweep.

Thin: bind the worker context and call ``notifications.delivery``. ``deliver`` is enqueued by
``notify`` after its commit. ``retry_due`` runs from a once-a-minute schedule (the cluster's
scheduler looks about every 30 s), so a retry happens at its backoff time rounded up to the next
sweep; it also picks up deliveries whose own task was lost and prunes old events.
"""

from __future__ import annotations

import logging
from typing import Any

from bcservice import request_context
from notifications import delivery

logger = logging.getLogger(__name__)

RETRY_SCHEDULE = "bc.notification-retry"


def deliver(delivery_id: int) -> str:
    with request_context.bind("worker"):
        return delivery.attempt(delivery_id)


def retry_due() -> dict[str, int]:
    with request_context.bind("worker"):
        counts = delivery.retry_due()
        counts["pruned"] = delivery.prune()
    if any(counts.values()):
        logger.info("notification retry sweep: %s", counts)
    return counts


def ensure_schedules(using: str = "default", **kwargs: Any) -> None:
    """Create or repair the retry sweep's schedule (runs after every migrate)."""
    from django_q.models import Schedule

    Schedule.objects.using(using).update_or_create(
        name=RETRY_SCHEDULE,
        defaults={
            "func": "notifications.tasks.retry_due",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
