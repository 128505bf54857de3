"""The worker's side: claim a delivery, call its channel, record the outcome, plan the retry.

A delivery is claimed with one conditional UPDATE (open, due, not leased), so the enqueued task
and the retry sweep never send it twice at the same moment. The channel runs with no database
transaction open. Failures are recorded with a sanitized error and retried with exponential
backoff (``backoff_seconds``) until ``BC_NOTIFY_MAX_ATTEMPTS``; a permanent failure (HTTP 400,
no routing key) stops at once. Just before sending, the route is read again and invariant 8 is
checked against it as it is now (``router.route_refusal``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from notifications import alerts, router
from notifications.channels import ChannelError, Message, sender
from notifications.choices import DeliveryStatus
from notifications.models import Alert, Delivery, Event

logger = logging.getLogger("notifications.delivery")

LEASE_SECONDS = 300  # far above any channel's own timeout; a dead worker's claim expires
PENDING_GRACE_SECONDS = 60  # a new delivery's own task normally runs well within this


def backoff_seconds(attempts: int) -> float:
    """Wait after the ``attempts``-th failure: base x 2^(n-1), capped, with +-10 % jitter so
    that deliveries failing together do not all come back at the same second."""
    base = float(getattr(settings, "BC_NOTIFY_RETRY_BASE_SECONDS", 30))
    cap = float(getattr(settings, "BC_NOTIFY_RETRY_MAX_SECONDS", 3600))
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.9, 1.1)


def max_attempts() -> int:
    return int(getattr(settings, "BC_NOTIFY_MAX_ATTEMPTS", 8))


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def claim(delivery_id: int, now: datetime) -> bool:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    taken = (
        Delivery.objects.filter(pk=delivery_id, status__in=DeliveryStatus.open())
        .filter(_free(now) & due)
        .update(
            status=DeliveryStatus.SENDING,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    )
    return taken == 1


def message_for(event: Event, delivery: Delivery) -> Message:
    payload = event.payload or {}
    if event.kind.startswith("status."):
        lines = alerts.reason_lines(payload)
    else:
        lines = [
            f"{key}: {value}"
            for key, value in payload.items()
            if isinstance(value, str | int | float) and not isinstance(value, bool)
        ]
    return Message(
        event_id=event.pk,
        kind=event.kind,
        action=delivery.action,
        dedup_key=delivery.dedup_key,
        subject=event.subject,
        tier=event.tier,
        environment=event.environment,
        resource_id=event.resource_id,
        created_at=event.created_at,
        payload=payload,
        lines=tuple(lines[:20]),
    )


def _scrub_values(secret: dict[str, str]) -> set[str]:
    """The secret's values, and for URLs their path segments too (a Slack webhook's token)."""
    values = {v for v in secret.values() if v}
    for value in list(values):
        if value.startswith(("http://", "https://")):
            values.update(part for part in urlsplit(value).path.split("/") if len(part) >= 8)
    return values


def _sanitize(text: str, scrub: Iterable[str]) -> str:
    from connectors.secrets import sanitize

    return str(sanitize(text, scrub))[:500]


def _record(pk: int, **fields: Any) -> None:
    Delivery.objects.filter(pk=pk).update(lease_until=None, **fields)


def _failed(delivery: Delivery, error: str, permanent: bool, scrub: set[str], now: datetime) -> str:
    attempts = delivery.attempts
    error = _sanitize(error, scrub)
    if permanent or attempts >= max_attempts():
        _record(delivery.pk, status=DeliveryStatus.FAILED, last_error=error, next_attempt_at=None)
        logger.warning(
            "delivery %s to %s failed for good after %s attempt(s): %s",
            delivery.pk,
            delivery.route_name,
            attempts,
            error,
        )
        return DeliveryStatus.FAILED
    wait = backoff_seconds(attempts)
    _record(
        delivery.pk,
        status=DeliveryStatus.RETRYING,
        last_error=error,
        next_attempt_at=now + timedelta(seconds=wait),
    )
    logger.info(
        "delivery %s to %s failed (attempt %s), retrying in %.0f s: %s",
        delivery.pk,
        delivery.route_name,
        attempts,
        wait,
        error,
    )
    return DeliveryStatus.RETRYING


def attempt(delivery_id: int, *, now: datetime | None = None) -> str:
    """Try one delivery now if it is due; returns its new status (or "not due")."""
    now = now or timezone.now()
    if not claim(delivery_id, now):
        return "not due"
    delivery = Delivery.objects.select_related("event", "route").get(pk=delivery_id)
    route = delivery.route
    if route is None:
        _record(delivery.pk, status=DeliveryStatus.FAILED, last_error="the route was deleted")
        return DeliveryStatus.FAILED
    refusal = "refused: the route is disabled" if not route.enabled else ""
    refusal = refusal or router.route_refusal(route, environment=delivery.event.environment or None)
    if refusal:
        _record(delivery.pk, status=DeliveryStatus.REFUSED, last_error=refusal[:500])
        logger.warning("delivery %s to %s %s", delivery.pk, route.name, refusal)
        return DeliveryStatus.REFUSED
    from connectors.secrets import SecretError, resolve

    scrub: set[str] = set()
    try:
        secret: dict[str, str] = {}
        if route.secret_ref:
            # Channel secrets are flat entries; "monitor" is the read-only purpose.
            secret = dict(resolve(route.secret_ref, "monitor"))
            scrub = _scrub_values(secret)
        detail = sender(route.channel)(message_for(delivery.event, delivery), route, secret)
    except ChannelError as exc:
        return _failed(delivery, str(exc), exc.permanent, scrub, now)
    except SecretError as exc:
        return _failed(delivery, f"channel secret unavailable: {exc}", False, scrub, now)
    except Exception as exc:  # a channel bug: record it like a failure, never lose the alert
        logger.error("channel %s crashed: %s", route.channel, _sanitize(repr(exc), scrub))
        return _failed(delivery, f"{type(exc).__name__}: {exc}", False, scrub, now)
    _record(
        delivery.pk,
        status=DeliveryStatus.DELIVERED,
        detail=_sanitize(str(detail), scrub)[:200],
        last_error="",
        next_attempt_at=None,
        delivered_at=timezone.now(),
    )
    return DeliveryStatus.DELIVERED


def due_ids(now: datetime, limit: int) -> list[int]:
    """Deliveries the retry sweep should try: retries that are due, new ones whose own task
    seems lost, and sends whose worker died (lease expired)."""
    grace = now - timedelta(seconds=PENDING_GRACE_SECONDS)
    wanted = (
        Q(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=grace)
        | Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
    )
    rows = Delivery.objects.filter(wanted).order_by("next_attempt_at", "pk")
    return list(rows.values_list("pk", flat=True)[:limit])


def retry_due(*, limit: int = 500, budget_seconds: float = 45.0) -> dict[str, int]:
    """Attempt what is due, within a time budget (the sweep runs again a minute later)."""
    deadline = time.monotonic() + budget_seconds
    counts: dict[str, int] = {}
    for pk in due_ids(timezone.now(), limit):
        if time.monotonic() > deadline:
            break
        outcome = attempt(pk)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def prune(*, keep_days: int | None = None, now: datetime | None = None) -> int:
    """Delete events older than ``BC_NOTIFY_KEEP_DAYS`` whose deliveries are all settled and
    that opened no alert still open."""
    days = keep_days if keep_days is not None else int(getattr(settings, "BC_NOTIFY_KEEP_DAYS", 90))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    busy = Delivery.objects.filter(status__in=DeliveryStatus.open()).values("event_id")
    # An alert still open needs its opening event: the recovery resolves whoever it told.
    opening = Alert.objects.exclude(condition="").values("opening_event_id")
    old = Event.objects.filter(created_at__lt=cutoff).exclude(pk__in=busy).exclude(pk__in=opening)
    deleted, _ = old.delete()
    return deleted
