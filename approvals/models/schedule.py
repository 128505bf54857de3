"""Schedules (admin-configured) that create execution requests, and the occurrences they made.

A schedule only ever *creates requests*, through ``approvals.services.request_create`` as its
``created_by`` operator, early enough for approvals (``lead_minutes`` before the planned time).
Starting stays approval-gated; the one exception is ``auto_start_drills`` (see
``executions.scheduled_start``), which still needs an approved drill and a policy that allows it.

Validation that needs the database (the policy that applies, the operator role) lives in
``approvals.services.schedules``; ``clean()`` holds what the row alone can tell.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from approvals import schedules as recurrence
from approvals.choices import RequestKind
from approvals.models.policy import MAX_VALIDITY_MINUTES
from approvals.models.request import ExecutionRequest
from inventory.models import Resource, ResourceGroup, Site


class Frequency(models.TextChoices):
    ONCE = recurrence.ONCE, "Once (on the start date)"
    DAILY = recurrence.DAILY, "Every N days"
    WEEKLY = recurrence.WEEKLY, "Every N weeks on the given weekdays"
    MONTHLY = recurrence.MONTHLY, "Every N months on a day (quarterly: N = 3)"


class OccurrenceState(models.TextChoices):
    REQUESTED = "requested", "Request created"
    MISSED = "missed", "Missed (no request could be created before the planned time)"
    STARTED = "started", "Started at the planned time (scheduled drill)"
    NOT_STARTED = "not_started", "Not started automatically"


# Bookkeeping the worker writes with queryset updates; kept out of the history table so a
# minute job does not add history rows, and out of the admin form.
RUNTIME_FIELDS = (
    "next_run_at",
    "next_create_at",
    "last_run_at",
    "last_error",
    "last_error_at",
)


class Schedule(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    resource = models.ForeignKey(
        Resource, on_delete=models.PROTECT, null=True, blank=True, related_name="schedules"
    )
    group = models.ForeignKey(
        ResourceGroup, on_delete=models.PROTECT, null=True, blank=True, related_name="schedules"
    )
    target_site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty (drills only): the DR site of the resource, or the DR site every "
        "member of the group shares.",
    )
    reason_template = models.TextField(
        default="Scheduled {kind} of {scope} planned for {planned_local} ({schedule}).",
        help_text="Placeholders: {schedule} {kind} {scope} {target} {planned_local} "
        "{planned_utc} {date}.",
    )
    change_ticket_template = models.CharField(
        max_length=64,
        blank=True,
        help_text="Optional; the same placeholders, e.g. a standard change number. Checked "
        "against the policy's ticket pattern.",
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA name, e.g. Europe/London."
    )
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.ONCE)
    start_date = models.DateField(help_text="Local date: the date of a one-off, else the first.")
    at_time = models.TimeField(help_text="Local wall-clock time (HH:MM) in the time zone.")
    interval = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(recurrence.MAX_INTERVAL)]
    )
    weekdays = models.JSONField(
        default=list, blank=True, help_text='Weekly: e.g. ["SA"]; empty: the start weekday.'
    )
    month_day = models.SmallIntegerField(
        null=True, blank=True, help_text="Monthly: 1-28, or -1 for the last day of the month."
    )
    until_date = models.DateField(null=True, blank=True, help_text="Last local date (optional).")
    lead_minutes = models.PositiveIntegerField(
        default=120,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_VALIDITY_MINUTES)],
        help_text="How long before the planned time the request is created, for approvals. "
        "At most the policy's approval validity, or the request would expire first.",
    )
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="bc_schedules",
        help_text="The operator the requests are created as (must hold the operator role).",
    )
    auto_start_drills = models.BooleanField(
        default=False,
        help_text="Drills only: start an approved drill at its planned time, when its policy "
        "allows scheduled starts. Otherwise an operator starts it.",
    )
    description = models.TextField(blank=True)
    # Worker bookkeeping (UTC): the next planned instant and when its request is due.
    next_run_at = models.DateTimeField(null=True, blank=True)
    next_create_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=[*RUNTIME_FIELDS, "updated_at"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(resource__isnull=False, group__isnull=True)
                    | Q(resource__isnull=True, group__isnull=False)
                ),
                name="schedule_scope_exactly_one",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> Resource | ResourceGroup | None:
        return self.resource if self.resource_id else self.group

    def rule(self) -> recurrence.Rule:
        return recurrence.Rule(
            frequency=self.frequency,
            start_date=self.start_date,
            at=self.at_time,
            time_zone=self.time_zone,
            interval=self.interval or 1,
            weekdays=tuple(self.weekdays or ()),
            month_day=self.month_day,
            until=self.until_date,
        )

    def next_local(self) -> str:
        if self.next_run_at is None:
            return ""
        return recurrence.local_text(self.next_run_at, self.time_zone)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if (self.resource_id is None) == (self.group_id is None):
            errors.setdefault("resource", []).append("Give exactly one of resource or group.")
        if self.kind != RequestKind.DRILL:
            if self.target_site_id is None:
                errors.setdefault("target_site", []).append(
                    "Required for a failover, switchover or failback."
                )
            if self.auto_start_drills:
                errors.setdefault("auto_start_drills", []).append(
                    "Only drills may start automatically; other kinds are started by an operator."
                )
        if not isinstance(self.weekdays, list):
            errors.setdefault("weekdays", []).append('A list such as ["SA"].')
        elif self.start_date is not None and self.at_time is not None:
            for name, messages in recurrence.rule_errors(self.rule()).items():
                errors.setdefault(name, []).extend(messages)
        if errors:
            raise ValidationError(errors)


class ScheduledOccurrence(models.Model):
    """One planned instant of a schedule and what became of it.

    The unique (schedule, planned_at) pair is what makes request creation happen exactly once
    per occurrence: the row is inserted in the same transaction as the request, so a second
    worker racing for the same occurrence fails and rolls its request back.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="occurrences")
    planned_at = models.DateTimeField(help_text="The planned instant (UTC).")
    state = models.CharField(max_length=16, choices=OccurrenceState.choices)
    request = models.OneToOneField(
        ExecutionRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="scheduled_occurrence",
    )
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    handled_at = models.DateTimeField(
        null=True, blank=True, help_text="When the planned-time start was decided (drills)."
    )

    class Meta:
        ordering = ["-planned_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "planned_at"], name="uniq_schedule_occurrence"
            ),
        ]
        indexes = [models.Index(fields=["state", "planned_at"], name="occurrence_due_idx")]

    def __str__(self) -> str:
        return f"{self.schedule_id}@{self.planned_at.isoformat()} ({self.state})"

    @property
    def planned_local(self) -> str:
        return recurrence.local_text(self.planned_at, self.schedule.time_zone)
