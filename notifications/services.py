"""Notifications: ``notify`` (what other apps call) and the admin's writes to routes.

``notify(kind, *, subject, tier, environment, payload, resource_id=None)`` is the only entry
point for the rest of the service; keep its signature stable. Callers run it in
``transaction.on_commit``, after their change is durable. It does three quick things and never
raises into the caller:

1. records the ``Event`` and one ``Delivery`` per matching route (``notifications.router``), in
   one short transaction; status changes first go through ``notifications.alerts`` (dedup);
2. writes one structured line to the ``notifications`` logger (the always-on log channel);
3. enqueues one django-q2 task per delivery (in that transaction with the ORM broker, after
   its commit with Redis). Channels are only ever called by the worker
   (``notifications.delivery``), so a slow or broken channel cannot hold up collection or an
   execution; a delivery whose task was lost is found by the retry sweep.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.snapshot import snapshot
from notifications import alerts, router
from notifications.choices import Action, Channel, DeliveryStatus
from notifications.models import Delivery, Event, Route

logger = logging.getLogger("notifications")
_log = logging.getLogger("notifications.router")


def notify(
    kind: str,
    *,
    subject: str,
    tier: int | None,
    environment: str | None,
    payload: dict[str, Any],
    resource_id: int | None = None,
) -> None:
    """Record and route one notification of ``kind`` (e.g. "request.approved")."""
    event: Event | None = None
    deliveries = 0
    try:
        recorded = _record(kind, subject, tier, environment, payload, resource_id)
        if recorded is None:
            _log.debug("status change of resource %s: condition unchanged", resource_id)
            return
        event, deliveries = recorded
    except Exception:  # recording must not surface in the committed caller
        logger.exception("notification could not be recorded", extra={"notification_kind": kind})
    # A logging handler failing is no reason to fail the caller either.
    with contextlib.suppress(Exception):
        logger.info(
            event.subject if event else subject,
            extra={
                "notification_kind": event.kind if event else kind,
                "channel": "log",
                "tier": tier,
                "environment": environment,
                "resource_id": resource_id,
                "payload": event.payload if event else _safe(payload),
                "event_id": event.pk if event else None,
                "deliveries": deliveries,
            },
        )


def _safe(payload: Any) -> dict[str, Any]:
    """The payload as stored and logged: JSON-safe, secret-looking keys and values redacted."""
    from connectors.secrets import sanitize  # the one scrubber of the service

    cleaned = sanitize(payload if isinstance(payload, dict) else {"value": payload})
    return cleaned if isinstance(cleaned, dict) else {"value": cleaned}


def _record(
    kind: str,
    subject: str,
    tier: int | None,
    environment: str | None,
    payload: dict[str, Any],
    resource_id: int | None,
) -> tuple[Event, int] | None:
    now = timezone.now()
    with transaction.atomic():
        change = None
        if kind == alerts.STATUS_CHANGED and resource_id is not None:
            change = alerts.apply(resource_id, payload.get("after"), now)
            if change is None:
                return None
            kind, subject = change.kind, alerts.subject_for(change, payload)
        event = Event.objects.create(
            kind=kind,
            subject=str(subject)[:300],
            tier=tier,
            environment=environment or "",
            resource_id=resource_id,
            payload=_safe(payload),
        )
        rows = _deliveries(event, change, now)
        Delivery.objects.bulk_create(rows)
        if change is not None and change.opens:
            alerts.set_opening_event(resource_id, event.pk)
        _enqueue_with_transaction([d.pk for d in rows if d.status == DeliveryStatus.PENDING])
    return event, len(rows)


def _delivery(
    event: Event, route: Route, action: str, dedup_key: str, refusal: str, now: Any
) -> Delivery:
    return Delivery(
        event=event,
        route=route,
        route_name=route.name,
        channel=route.channel,
        action=action,
        dedup_key=dedup_key,
        status=DeliveryStatus.REFUSED if refusal else DeliveryStatus.PENDING,
        last_error=refusal[:500],
        next_attempt_at=None if refusal else now,
    )


def _deliveries(event: Event, change: alerts.Change | None, now: Any) -> list[Delivery]:
    """One delivery per matching route, plus the resolves a closing condition owes."""
    env = event.environment or None
    if change is None:
        action, key = Action.NOTIFY, f"bcservice/event/{event.pk}"
    elif change.opens:
        action, key = Action.TRIGGER, change.opens
    else:
        action, key = Action.RESOLVE, change.closes
    rows: list[Delivery] = []
    seen: set[tuple[int, str]] = set()
    for found in router.match(
        router.active_routes(), kind=event.kind, tier=event.tier, environment=env
    ):
        rows.append(_delivery(event, found.route, action, key, found.refusal, now))
        seen.add((found.route.pk, key))
    if change is not None and change.closes and change.closed_event_id:
        # Whoever was told the condition opened is told it ended: PagerDuty resolves the
        # incident with the same dedup key. When one condition replaces another, only paging
        # channels need that resolve; the others just got the new condition's message.
        prior = (
            Delivery.objects.filter(event_id=change.closed_event_id, action=Action.TRIGGER)
            .exclude(status=DeliveryStatus.REFUSED)
            .select_related("route")
        )
        for old in prior:
            route = old.route
            if route is None or (route.pk, change.closes) in seen:
                continue
            if change.opens and route.channel != Channel.PAGERDUTY:
                continue
            refusal = router.route_refusal(route, environment=env)
            rows.append(_delivery(event, route, Action.RESOLVE, change.closes, refusal, now))
            seen.add((route.pk, change.closes))
    return rows


def _enqueue_with_transaction(delivery_ids: Sequence[int]) -> None:
    """Queue the deliveries' tasks so that they exist exactly when the rows do.

    With the ORM broker the queue is a table: the task rows are inserted in this transaction
    (an outbox: committed or rolled back with the deliveries, and django-q2 then leaves the
    caller's connection open, which saves a reconnect per notification). A Redis broker is not
    transactional: push after the commit, so a worker never looks for rows not yet committed.
    """
    if not delivery_ids:
        return
    if "orm" in settings.Q_CLUSTER:
        enqueue(delivery_ids)
    else:
        transaction.on_commit(lambda: enqueue(delivery_ids))


def enqueue(delivery_ids: Sequence[int]) -> None:
    """Hand deliveries to the worker. A broker failure only delays them: the retry sweep
    (``notifications.tasks.retry_due``) picks up any due delivery nobody is working on."""
    try:
        from bcservice.jobs import enqueue as enqueue_job

        for pk in delivery_ids:
            enqueue_job("notifications.tasks.deliver", pk, task_name=f"notify-delivery-{pk}")
    except Exception:
        _log.warning("could not enqueue deliveries %s; the retry sweep will", list(delivery_ids))


# --- routes (the admin's writes) --------------------------------------------------------------


def _is_user(actor: Any) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False)


@transaction.atomic
def route_save(*, actor: Any, route: Route) -> Route:
    """Validate (invariant 8 included), save with history, and audit the change."""
    creating = route.pk is None
    before = None
    if not creating:
        before = snapshot(Route.objects.select_for_update().filter(pk=route.pk).first())
    route.full_clean()
    if _is_user(actor):
        route._history_user = actor
    route.save()
    audit.record(
        action="notificationroute.created" if creating else "notificationroute.updated",
        actor=actor,
        obj=route,
        before=before,
        after=snapshot(route),
    )
    return route


@transaction.atomic
def route_delete(*, actor: Any, route: Route) -> None:
    before, pk, name = snapshot(route), route.pk, route.name
    if _is_user(actor):
        route._history_user = actor
    route.delete()
    audit.record(
        action="notificationroute.deleted",
        actor=actor,
        object_type="notifications.route",
        object_id=pk,
        object_name=name,
        before=before,
    )


@transaction.atomic
def deliveries_retry(*, actor: Any, deliveries: Sequence[Delivery]) -> int:
    """Send failed or waiting deliveries again now (the admin's "retry now"), audited."""
    retryable = (DeliveryStatus.FAILED, DeliveryStatus.RETRYING)
    ids = [d.pk for d in deliveries if d.status in retryable]
    if not ids:
        return 0
    Delivery.objects.filter(pk__in=ids, status__in=retryable).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now(), lease_until=None
    )
    audit.record(
        action="notificationdelivery.retry_requested",
        actor=actor,
        object_type="notifications.delivery",
        object_name=f"{len(ids)} deliveries",
        after={"deliveries": ids},
    )
    _enqueue_with_transaction(ids)
    return len(ids)
