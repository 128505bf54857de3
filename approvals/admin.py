"""Approvals in the Django admin: policies, the break-glass list and request schedules are
editable (through the audited services, with history); requests, votes, grants and schedule
occurrences are read-only with history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from simple_history.admin import SimpleHistoryAdmin

from approvals import schedules as recurrence
from approvals import services
from approvals.models import (
    Approval,
    ApprovalPolicy,
    BreakGlassEligibility,
    BreakGlassGrant,
    ExecutionRequest,
    Schedule,
    ScheduledOccurrence,
)
from approvals.services import schedules as schedule_services
from bcservice.roles import APPROVER_ROLES


class ApprovalPolicyForm(forms.ModelForm):
    # A checkbox per approver role instead of raw JSON.
    required_roles = forms.MultipleChoiceField(
        choices=[(r, r) for r in APPROVER_ROLES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each checked role must be covered by a different person.",
    )

    class Meta:
        model = ApprovalPolicy
        fields = [
            "name",
            "tier",
            "kind",
            "environment",
            "min_approvers",
            "required_roles",
            "require_change_ticket",
            "change_ticket_pattern",
            "approval_validity_minutes",
            "flap_window_minutes",
            "allow_scheduled_start",
            "description",
        ]


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(SimpleHistoryAdmin):
    form = ApprovalPolicyForm
    list_display = (
        "name",
        "tier",
        "kind",
        "environment",
        "min_approvers",
        "required_roles",
        "require_change_ticket",
        "approval_validity_minutes",
        "flap_window_minutes",
    )
    list_filter = ("tier", "kind", "environment", "require_change_ticket")
    search_fields = ("name", "description")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.policy_save(actor=request.user, policy=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.policy_delete(actor=request.user, policy=obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.policy_delete(actor=request.user, policy=obj)


@admin.register(BreakGlassEligibility)
class BreakGlassEligibilityAdmin(SimpleHistoryAdmin):
    list_display = ("user", "note", "created_at")
    search_fields = ("user__username", "note")
    autocomplete_fields = ("user",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.eligibility_save(actor=request.user, eligibility=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.eligibility_delete(actor=request.user, eligibility=obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.eligibility_delete(actor=request.user, eligibility=obj)


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin):
    """Records written only by the services: the admin shows them and their history."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    fields = ("approver", "decision", "roles", "comment", "at", "voided_at", "void_reason")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExecutionRequest)
class ExecutionRequestAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "kind",
        "resource",
        "group",
        "target_site",
        "state",
        "requested_by",
        "change_ticket",
        "created_at",
        "expires_at",
    )
    list_filter = ("state", "kind", "target_site")
    search_fields = ("reason", "change_ticket", "resource__name", "group__name")
    list_select_related = ("resource", "group", "target_site", "requested_by")
    inlines = [ApprovalInline]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyHistoryAdmin):
    list_display = ("id", "request", "approver", "decision", "at", "voided_at")
    list_filter = ("decision",)
    search_fields = ("approver__username", "comment")
    list_select_related = (
        "request__resource",
        "request__group",
        "request__target_site",
        "approver",
    )


@admin.register(BreakGlassGrant)
class BreakGlassGrantAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "grantee",
        "resource",
        "group",
        "starts_at",
        "ends_at",
        "reviewed_by",
        "reviewed_at",
    )
    list_filter = ("reviewed_at",)
    search_fields = ("grantee__username", "reason")
    list_select_related = ("grantee", "resource", "group", "reviewed_by")


class ScheduleForm(forms.ModelForm):
    weekdays = forms.MultipleChoiceField(
        choices=[(d, d) for d in recurrence.WEEKDAYS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Weekly schedules: the days; none ticked means the start date's weekday.",
    )

    class Meta:
        model = Schedule
        fields = [
            "name",
            "description",
            "enabled",
            "kind",
            "resource",
            "group",
            "target_site",
            "created_by",
            "reason_template",
            "change_ticket_template",
            "time_zone",
            "frequency",
            "start_date",
            "at_time",
            "interval",
            "weekdays",
            "month_day",
            "until_date",
            "lead_minutes",
            "auto_start_drills",
        ]
        widgets = {"at_time": forms.TimeInput(format="%H:%M")}

    def _post_clean(self) -> None:
        # Model validation first (row rules, recurrence, DST gap of a one-off); then what needs
        # the database (operator role, target, policy, lead time), as field errors on the form.
        super()._post_clean()
        if self.errors:
            return
        for name, messages in schedule_services.schedule_errors(self.instance).items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


class ScheduledOccurrenceInline(admin.TabularInline):
    model = ScheduledOccurrence
    extra = 0
    can_delete = False
    fields = ("planned_at", "planned_local", "state", "request", "detail", "handled_at")
    readonly_fields = fields
    ordering = ("-planned_at",)
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Schedule)
class ScheduleAdmin(SimpleHistoryAdmin):
    form = ScheduleForm
    list_display = (
        "name",
        "kind",
        "resource",
        "group",
        "frequency",
        "interval",
        "at_time",
        "time_zone",
        "next_local",
        "lead_minutes",
        "auto_start_drills",
        "enabled",
        "last_error",
    )
    list_filter = ("enabled", "kind", "frequency", "auto_start_drills")
    search_fields = ("name", "description", "resource__name", "group__name")
    list_select_related = ("resource", "group")
    autocomplete_fields = ("created_by",)
    readonly_fields = ("next_local", "upcoming", "last_run_at", "last_error", "last_error_at")
    inlines = [ScheduledOccurrenceInline]

    @admin.display(description="next occurrence (local)")
    def next_local(self, obj: Schedule) -> str:
        return obj.next_local()

    @admin.display(description="upcoming occurrences")
    def upcoming(self, obj: Schedule) -> str:
        if obj.pk is None:
            return "-"
        try:
            items = recurrence.occurrences(obj.rule(), timezone.now(), 5)
        except ValueError as exc:  # e.g. a zone the host's tz database no longer has
            return str(exc)
        rows = []
        for item in items:
            note = ""
            if not item.exists:
                note = " (moved: the local time does not exist that day)"
            elif item.ambiguous:
                note = " (the first of the two)"
            rows.append((recurrence.local_text(item.at, obj.time_zone), note))
        return format_html_join("", "<div>{}{}</div>", rows) or "none"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.schedule_save(actor=request.user, schedule=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.schedule_delete(actor=request.user, schedule=obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.schedule_delete(actor=request.user, schedule=obj)


@admin.register(ScheduledOccurrence)
class ScheduledOccurrenceAdmin(ReadOnlyHistoryAdmin):
    list_display = ("schedule", "planned_at", "planned_local", "state", "request", "handled_at")
    list_filter = ("state",)
    search_fields = ("schedule__name", "detail")
    list_select_related = ("schedule", "request")
