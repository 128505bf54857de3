"""Approvals in the Django admin: policies and the break-glass list are editable (through the
audited services, with history); requests, votes and grants are read-only with history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from approvals import services
from approvals.models import (
    Approval,
    ApprovalPolicy,
    BreakGlassEligibility,
    BreakGlassGrant,
    ExecutionRequest,
)
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
