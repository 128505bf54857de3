"""The worker job that turns due schedule occurrences into execution requests.

Exactly once per occurrence: the job inserts the ``ScheduledOccurrence`` row *before* it creates
the request, in one transaction. The unique (schedule, planned_at) constraint makes a second
worker that reached the same occurrence wait for the first and then fail, rolling its own work
back, so two workers never create two requests for one occurrence. Each schedule is also handled
under its row lock (``skip_locked``), which keeps them from even trying most of the time.

Never late: a request is created only between ``planned - lead`` and ``planned``. When the job
gets to an occurrence after its planned time (worker down, or every attempt failed, e.g. no
policy applies), the occurrence is recorded as ``missed`` (audited, notified), and the schedule
moves on to its next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import schedules as recurrence
from approvals.exceptions import ApprovalRefused
from approvals.models import ExecutionRequest, Schedule, ScheduledOccurrence
from approvals.models.schedule import RUNTIME_FIELDS, OccurrenceState
from approvals.services.requests import request_create
from approvals.services.schedules import MAX_MISSED_PER_RUN, render, target_for
from audit import services as audit
from notifications.services import notify

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    requested: list[int] = field(default_factory=list)  # request ids created
    missed: int = 0
    failed: int = 0  # attempts that failed but may still succeed before the planned time
    duplicates: int = 0  # occurrences another worker had already handled

    def as_dict(self) -> dict[str, int]:
        return {
            "requested": len(self.requested),
            "missed": self.missed,
            "failed": self.failed,
            "duplicates": self.duplicates,
        }


def _notify(kind: str, schedule: Schedule, subject: str, **payload: Any) -> None:
    scope_obj = schedule.scope
    tier = scope_obj.tier if scope_obj is not None else None
    environment = getattr(scope_obj, "environment", None)
    resource_id = schedule.resource_id
    data = {"schedule": schedule.pk, "name": schedule.name, **payload}
    transaction.on_commit(
        lambda: notify(
            kind,
            subject=subject,
            tier=tier,
            environment=environment,
            payload=data,
            resource_id=resource_id,
        )
    )


def _insert_occurrence(
    schedule: Schedule, planned_at: datetime, state: str, detail: str = ""
) -> ScheduledOccurrence | None:
    """Claim the occurrence; None when another worker already has (the unique constraint)."""
    try:
        with transaction.atomic():
            return ScheduledOccurrence.objects.create(
                schedule=schedule, planned_at=planned_at, state=state, detail=detail[:2000]
            )
    except IntegrityError:
        return None


def occurrence_create_request(
    schedule: Schedule, planned_at: datetime, *, now: datetime
) -> ExecutionRequest | None:
    """Create the request of one occurrence, exactly once.

    Returns None when the occurrence was already claimed (by another worker, or an earlier
    run). Raises ValidationError / ApprovalRefused when the request cannot be created; the
    caller's savepoint then rolls the claim back so a later attempt may still succeed.
    """
    occurrence = _insert_occurrence(schedule, planned_at, OccurrenceState.REQUESTED)
    if occurrence is None:
        return None
    target, why = target_for(schedule)
    if target is None:
        raise ValidationError({"target_site": [why]})
    request = request_create(
        actor=schedule.created_by,
        kind=schedule.kind,
        target_site=target,
        reason=render(schedule.reason_template, schedule, target, planned_at),
        resource=schedule.resource,
        group=schedule.group,
        change_ticket=render(schedule.change_ticket_template or "", schedule, target, planned_at),
        now=now,
    )
    occurrence.request = request
    occurrence.detail = f"Request #{request.pk} created {now:%Y-%m-%d %H:%M} UTC."
    occurrence.save(update_fields=["request", "detail"])
    audit.record(
        action="schedule.request_created",
        actor="worker",
        obj=schedule,
        after={
            "occurrence": occurrence.pk,
            "planned_at": planned_at.isoformat(),
            "planned_local": recurrence.local_text(planned_at, schedule.time_zone),
            "request": request.pk,
            "requested_by": schedule.created_by.get_username(),
        },
    )
    return request


def _record_missed(schedule: Schedule, planned_at: datetime, why: str, result: RunResult) -> None:
    occurrence = _insert_occurrence(schedule, planned_at, OccurrenceState.MISSED, why)
    if occurrence is None:
        result.duplicates += 1
        return
    result.missed += 1
    audit.record(
        action="schedule.occurrence_missed",
        actor="worker",
        obj=schedule,
        after={
            "occurrence": occurrence.pk,
            "planned_at": planned_at.isoformat(),
            "planned_local": recurrence.local_text(planned_at, schedule.time_zone),
            "reason": why,
        },
    )
    _notify(
        "schedule.occurrence_missed",
        schedule,
        f"Schedule '{schedule.name}': the {schedule.kind} planned for "
        f"{recurrence.local_text(planned_at, schedule.time_zone)} was missed",
        planned_at=planned_at.isoformat(),
        reason=why,
    )


def _advance(schedule: Schedule, planned_at: datetime) -> None:
    found = recurrence.next_occurrence(schedule.rule(), planned_at)
    schedule.next_run_at = found.at if found else None
    schedule.next_create_at = found.at - timedelta(minutes=schedule.lead_minutes) if found else None


def schedule_run(schedule_id: int, *, now: datetime | None = None) -> RunResult:
    """Handle whatever of one schedule is due at ``now``: create, or record missed ones."""
    now = now or timezone.now()
    result = RunResult()
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("created_by", "resource", "group", "target_site")
            .filter(pk=schedule_id, enabled=True)
            .first()
        )
        if schedule is None:  # another worker holds it, or it was disabled meanwhile
            return result
        error = ""
        for _ in range(MAX_MISSED_PER_RUN + 1):
            planned = schedule.next_run_at
            if planned is None or schedule.next_create_at is None or schedule.next_create_at > now:
                break
            if planned <= now:
                why = schedule.last_error or (
                    "The request was not created before the planned time "
                    "(the worker did not run in the lead window)."
                )
                _record_missed(schedule, planned, why, result)
                schedule.last_error = ""
                _advance(schedule, planned)
                continue
            try:
                with transaction.atomic():
                    request = occurrence_create_request(schedule, planned, now=now)
            except (ValidationError, ApprovalRefused) as exc:
                error = _error_text(exc)
                result.failed += 1
                break  # retried on the next run until the planned time; then recorded missed
            if request is None:
                result.duplicates += 1
            else:
                result.requested.append(request.pk)
            _advance(schedule, planned)
        schedule.last_run_at = now
        if error:
            schedule.last_error, schedule.last_error_at = error[:2000], now
            logger.warning(
                "schedule could not create its request",
                extra={"schedule": schedule.pk, "error": error},
            )
        elif result.requested:
            schedule.last_error, schedule.last_error_at = "", None
        # A queryset update: bookkeeping, not a configuration change (no history row).
        Schedule.objects.filter(pk=schedule.pk).update(
            **{name: getattr(schedule, name) for name in RUNTIME_FIELDS}
        )
    return result


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(
            f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()
        )
    return getattr(exc, "message", None) or str(exc)


def schedules_run_due(*, now: datetime | None = None) -> dict[str, int]:
    """The minute job: every enabled schedule whose request is due (or overdue)."""
    now = now or timezone.now()
    ids = list(
        Schedule.objects.filter(enabled=True, next_create_at__lte=now)
        .order_by("next_create_at")
        .values_list("pk", flat=True)
    )
    total = RunResult()
    for pk in ids:
        try:
            one = schedule_run(pk, now=now)
        except Exception:  # one broken schedule must not stop the others; retried next minute
            logger.exception("schedule job failed", extra={"schedule": pk})
            total.failed += 1
            continue
        total.requested += one.requested
        total.missed += one.missed
        total.failed += one.failed
        total.duplicates += one.duplicates
    return total.as_dict()
