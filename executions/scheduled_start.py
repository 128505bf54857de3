"""Starting scheduled drills at their planned time, where policy allows it.

A schedule only creates requests (approvals.services.schedules). Starting stays approval-gated:
an operator confirms and starts, except for one case, decided here for each occurrence whose
planned time has come and whose schedule asks for it (``auto_start_drills``). It starts only
when all of these hold:

- the request is a drill (a switchover, failover or failback is never started by a schedule);
- the policy the approvals were given under (the request's snapshot) has
  ``allow_scheduled_start``;
- the request is approved now, under its current policy and scope, by approvals alone (an
  operator's break-glass grant never stands in for them here), not expired, not flapping;
- the planned time passed less than ``START_GRACE`` ago: a drill is not started late. Past it,
  the occurrence is recorded as not started and an operator may still start the request.

The start goes through ``executions.services.execution_start`` as the schedule's operator, so
the same invariants hold (request row lock, one active execution per resource, audit, queueing).
Each occurrence is decided exactly once, under its row lock, and the decision is audited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import evaluation
from approvals.choices import RequestKind, RequestState
from approvals.models import ScheduledOccurrence
from approvals.models.schedule import OccurrenceState
from approvals.services.transitions import lock
from audit import services as audit
from bcservice import request_context
from bcservice.api.exceptions import IllegalTransition
from bcservice.roles import OPERATOR, has_role
from executions import services
from notifications.services import notify

logger = logging.getLogger(__name__)

# The job runs every minute; a drill not started within this much of its planned time is not
# started automatically (the worker was down): it is recorded, and an operator decides.
START_GRACE = timedelta(minutes=15)
SCHEDULE_NAME = "executions.scheduled_start"
TASK = "executions.scheduled_start.run"


def due(now: datetime) -> list[int]:
    """Occurrences waiting for a planned-time decision."""
    return list(
        ScheduledOccurrence.objects.filter(
            state=OccurrenceState.REQUESTED,
            planned_at__lte=now,
            handled_at__isnull=True,
            schedule__auto_start_drills=True,
            request__isnull=False,
        )
        .order_by("planned_at")
        .values_list("pk", flat=True)
    )


def _blocker(occurrence: ScheduledOccurrence, request: Any, now: datetime) -> str:
    """Why this occurrence's request must not start automatically ("" when it may)."""
    schedule = occurrence.schedule
    if request.kind != RequestKind.DRILL or schedule.kind != RequestKind.DRILL:
        return f"Only drills start at their planned time; a {request.kind} waits for an operator."
    if not schedule.auto_start_drills:
        return "The schedule does not start drills automatically."
    if not (request.policy_snapshot or {}).get("allow_scheduled_start"):
        return (
            f"Policy '{(request.policy_snapshot or {}).get('name')}' does not allow scheduled "
            "starts; an operator starts the drill."
        )
    if now - occurrence.planned_at > START_GRACE:
        late = int((now - occurrence.planned_at).total_seconds() // 60)
        return (
            f"The planned start was missed by {late} minutes (the worker did not run); "
            "not started late. An operator may start it."
        )
    if not has_role(schedule.created_by, OPERATOR):
        return f"{schedule.created_by.get_username()} no longer holds the operator role."
    if request.state != RequestState.APPROVED:
        return f"The request is {request.state}, not approved, at the planned time."
    # actor=None: only approvals count; a break-glass grant is a person's, not a schedule's.
    blocker, _grant = evaluation.start_blocker(request, None, now)
    return blocker.message if blocker is not None else ""


def decide(occurrence_id: int, *, now: datetime | None = None) -> str | None:
    """Start the drill of one occurrence or record why not; returns the new state (None: skip)."""
    now = now or timezone.now()
    with transaction.atomic():
        occurrence = (
            ScheduledOccurrence.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("schedule__created_by")
            .filter(pk=occurrence_id, state=OccurrenceState.REQUESTED, handled_at__isnull=True)
            .first()
        )
        if occurrence is None or occurrence.request_id is None:
            return None  # decided already, or another worker is deciding
        request = lock(occurrence.request_id)  # held to the end: the state cannot move under us
        why = _blocker(occurrence, request, now)
        execution = None
        if not why:
            try:
                with transaction.atomic():
                    execution = services.execution_start(
                        actor=occurrence.schedule.created_by,
                        request=request,
                        confirm=services.scope_name(request),
                    )
            except (ValidationError, IllegalTransition) as exc:
                why = _message(exc)
        occurrence.handled_at = now
        if execution is not None:
            occurrence.state = OccurrenceState.STARTED
            occurrence.detail = f"Execution #{execution.pk} started at the planned time."
        else:
            occurrence.state = OccurrenceState.NOT_STARTED
            occurrence.detail = why[:2000]
        occurrence.save(update_fields=["state", "detail", "handled_at"])
        audit.record(
            action="schedule.drill_started" if execution else "schedule.drill_not_started",
            actor="worker",
            obj=occurrence.schedule,
            after={
                "occurrence": occurrence.pk,
                "request": request.pk,
                "planned_at": occurrence.planned_at.isoformat(),
                "execution": execution.pk if execution else None,
                "reason": "" if execution else why,
            },
        )
        if execution is None:
            _notify_not_started(occurrence, request, why)
    return occurrence.state


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return str(getattr(exc, "message", None) or getattr(exc, "detail", None) or exc)


def _notify_not_started(occurrence: ScheduledOccurrence, request: Any, why: str) -> None:
    snap = request.policy_snapshot or {}
    payload = {"schedule": occurrence.schedule_id, "request": request.pk, "reason": why}
    subject = (
        f"Scheduled drill #{request.pk} ({occurrence.schedule.name}) was not started "
        "at its planned time"
    )
    tier, environment, resource_id = (
        snap.get("scope_tier"),
        snap.get("scope_environment"),
        request.resource_id,
    )
    transaction.on_commit(
        lambda: notify(
            "schedule.drill_not_started",
            subject=subject,
            tier=tier,
            environment=environment,
            payload=payload,
            resource_id=resource_id,
        )
    )


def start_due(*, now: datetime | None = None) -> dict[str, int]:
    """The minute job: decide every occurrence whose planned time has come."""
    now = now or timezone.now()
    counts = {"started": 0, "not_started": 0}
    for pk in due(now):
        try:
            state = decide(pk, now=now)
        except Exception:  # undecided (rolled back): tried again next minute, within the grace
            logger.exception("scheduled start failed", extra={"occurrence": pk})
            continue
        if state == OccurrenceState.STARTED:
            counts["started"] += 1
        elif state == OccurrenceState.NOT_STARTED:
            counts["not_started"] += 1
    return counts


def run() -> dict[str, int]:
    """django-q2 entry point (every minute): the worker context, then ``start_due``.

    No advisory lock is needed: each occurrence is decided under its row lock (``skip_locked``)
    and only while it is still undecided, so two workers never start one drill twice.
    """
    with request_context.bind("worker"):
        counts = start_due()
    if any(counts.values()):
        logger.info("scheduled drill starts", extra=counts)
    return counts


def ensure_schedule(**kwargs: object) -> None:
    """The planned-time start job runs every minute (django-q2's finest schedule)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": TASK, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
