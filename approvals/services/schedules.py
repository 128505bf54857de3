"""Request schedules: saving them (admin, audited) and validating them against the database.
The worker job that turns due occurrences into requests is ``schedule_runs``.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import evaluation, scope
from approvals import schedules as recurrence
from approvals.choices import RequestKind
from approvals.models import Schedule
from approvals.models.schedule import RUNTIME_FIELDS
from approvals.policies import ticket_errors
from approvals.services.transitions import is_user
from audit import services as audit
from audit.snapshot import snapshot
from bcservice.roles import OPERATOR, has_role
from inventory.models import Site

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
