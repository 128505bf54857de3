"""Request schedules: saving them (admin, audited) and the worker job that turns due occurrences
into execution requests.

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
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import evaluation, scope
from approvals import schedules as recurrence
from approvals.choices import RequestKind
from approvals.exceptions import ApprovalRefused
from approvals.models import ExecutionRequest, Schedule, ScheduledOccurrence
from approvals.models.schedule import RUNTIME_FIELDS, OccurrenceState
from approvals.policies import ticket_errors
from approvals.services.requests import request_create
from approvals.services.transitions import is_user
from audit import services as audit
from audit.snapshot import snapshot
from bcservice.roles import OPERATOR, has_role
from inventory.models import Site
from notifications.services import notify

logger = logging.getLogger(__name__)

PLACEHOLDERS = frozenset(
    {"schedule", "kind", "scope", "target", "planned_local", "planned_utc", "date"}
)
# A worker that was down for a long time records at most this many missed occurrences of one
# schedule per run (the rest on the next runs), so one run stays short.
MAX_MISSED_PER_RUN = 100
# Fields whose change re-plans the schedule from now (the stored next occurrence no longer fits).
_PLAN_FIELDS = (
    "frequency",
    "start_date",
    "at_time",
    "time_zone",
    "interval",
    "weekdays",
    "month_day",
    "until_date",
    "lead_minutes",
    "enabled",
)


# ---------------------------------------------------------------------------------------------
# Validation that needs the database, and the template texts


def _template_errors(text: str) -> list[str]:
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"Not a valid template: {exc}."]
    errors = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            errors.append(f"Unknown placeholder {{{name}}}; use {', '.join(sorted(PLACEHOLDERS))}.")
    return errors


def render(text: str, schedule: Schedule, target: Site | None, planned_at: datetime) -> str:
    """A template filled for one occurrence (placeholders were checked when it was saved)."""
    local = planned_at.astimezone(recurrence.zone(schedule.time_zone))
    scope_obj = schedule.scope
    values = {
        "schedule": schedule.name,
        "kind": str(schedule.kind),
        "scope": scope_obj.name if scope_obj is not None else "",
        "target": target.name if target is not None else "",
        "planned_local": recurrence.local_text(planned_at, schedule.time_zone),
        "planned_utc": planned_at.astimezone(recurrence.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "date": local.strftime("%Y%m%d"),
    }
    return text.format_map(values)


def target_for(schedule: Schedule) -> tuple[Site | None, str]:
    """The target site of the schedule's requests, or (None, why there is none)."""
    if schedule.target_site_id is not None:
        return schedule.target_site, ""
    if schedule.kind != RequestKind.DRILL:
        return None, "A failover, switchover or failback needs a target site."
    # A drill exercises the standby side: the DR site, or the home site while a switchover or
    # failover is left in place (the primary then runs at the DR site).
    members = scope.members(resource=schedule.resource, group=schedule.group)
    standby = {m.pk: (m.primary_site if m.away_from_home else m.dr_site) for m in members}
    if len({site.pk for site in standby.values()}) != 1:
        return None, "The group's members do not share one standby site; choose the target site."
    return standby[members[0].pk], ""


def schedule_errors(schedule: Schedule, *, now: datetime | None = None) -> dict[str, list[str]]:
    """What the database says about a schedule: operator, target, policy, lead time, ticket."""
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if schedule.created_by_id is not None and not has_role(schedule.created_by, OPERATOR):
        add("created_by", "Requests are created as this user: they must hold the operator role.")
    for name in ("reason_template", "change_ticket_template"):
        for message in _template_errors(getattr(schedule, name) or ""):
            add(name, message)
    if errors or (schedule.resource_id is None) == (schedule.group_id is None):
        return errors
    members = scope.members(resource=schedule.resource, group=schedule.group)
    if not members:
        add("group", "The group has no members.")
        return errors
    target, why = target_for(schedule)
    if target is None:
        add("target_site", why)
        return errors
    for problem in scope.target_errors(schedule.kind, members, target):
        add("target_site", problem)
    snap, _fp, _scope_fp = evaluation.policy_binding(
        kind=schedule.kind,
        resource=schedule.resource,
        group=schedule.group,
        target_site_id=target.pk,
        members=members,
    )
    if snap is None:
        add("kind", "No approval policy applies to this scope and kind; ask for one first.")
        return errors
    validity = int(snap.get("approval_validity_minutes") or 0)
    if schedule.lead_minutes > validity:
        add(
            "lead_minutes",
            f"At most {validity} (the approval validity of policy '{snap.get('name')}'): "
            "a request created earlier would expire before its planned time.",
        )
    if schedule.auto_start_drills and not snap.get("allow_scheduled_start"):
        add(
            "auto_start_drills",
            f"Policy '{snap.get('name')}' does not allow scheduled starts; "
            "an admin must allow them on the policy first.",
        )
    if schedule.enabled and recurrence.next_occurrence(schedule.rule(), now) is None:
        name = "start_date" if schedule.frequency == recurrence.ONCE else "until_date"
        add(name, "No occurrence is left after now; nothing would ever run.")
    if "change_ticket_template" not in errors:
        sample = render(schedule.change_ticket_template or "", schedule, target, now)
        for problem in ticket_errors(snap, sample):
            add("change_ticket_template", problem)
    return errors


def _plan(schedule: Schedule, now: datetime) -> None:
    """Set the next occurrence after ``now`` (or after the last one recorded, if later)."""
    after = now
    if schedule.pk is not None:
        last = schedule.occurrences.order_by("-planned_at").values_list("planned_at", flat=True)
        last_at = last.first()
        if last_at is not None and last_at > after:
            after = last_at
    found = recurrence.next_occurrence(schedule.rule(), after) if schedule.enabled else None
    schedule.next_run_at = found.at if found else None
    schedule.next_create_at = found.at - timedelta(minutes=schedule.lead_minutes) if found else None


@transaction.atomic
def schedule_save(*, actor: Any, schedule: Schedule, now: datetime | None = None) -> Schedule:
    """Validate (row and database rules), plan the next occurrence, save, audit."""
    now = now or timezone.now()
    creating = schedule.pk is None
    before_row = None
    if not creating:
        before_row = Schedule.objects.select_for_update().filter(pk=schedule.pk).first()
    schedule.full_clean()
    errors = schedule_errors(schedule, now=now)
    if errors:
        raise ValidationError(errors)
    replan = before_row is None or any(
        getattr(before_row, name) != getattr(schedule, name) for name in _PLAN_FIELDS
    )
    if replan:
        _plan(schedule, now)
        if schedule.enabled and schedule.next_run_at is None:
            field_name = "start_date" if schedule.frequency == recurrence.ONCE else "until_date"
            raise ValidationError(
                {field_name: ["No occurrence is left after now; nothing would ever run."]}
            )
        schedule.last_error, schedule.last_error_at = "", None
    else:  # keep the worker's bookkeeping as the worker left it
        for name in RUNTIME_FIELDS:
            setattr(schedule, name, getattr(before_row, name))
    if is_user(actor):
        schedule._history_user = actor
    schedule.save()
    audit.record(
        action="schedule.created" if creating else "schedule.updated",
        actor=actor,
        obj=schedule,
        before=snapshot(before_row) if before_row is not None else None,
        after=snapshot(schedule),
    )
    return schedule


@transaction.atomic
def schedule_delete(*, actor: Any, schedule: Schedule) -> None:
    """Delete a schedule that never produced an occurrence (otherwise: disable it)."""
    if schedule.occurrences.exists():
        raise ValidationError(
            {"enabled": ["This schedule has occurrences on record; disable it instead."]}
        )
    before, pk, name = snapshot(schedule), schedule.pk, schedule.name
    if is_user(actor):
        schedule._history_user = actor
    schedule.delete()
    audit.record(
        action="schedule.deleted",
        actor=actor,
        object_type="approvals.schedule",
        object_id=pk,
        object_name=name,
        before=before,
    )


# ---------------------------------------------------------------------------------------------
# The worker job


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
