"""Inventory in the Django admin. Saves and deletes go through inventory.services so that every
change is validated the same way as in the API and lands in the audit log and history."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from inventory import services
from inventory.models import GroupMembership, Resource, ResourceGroup, Site


class AuditedAdmin(SimpleHistoryAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.save_object(actor=request.user, instance=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.delete_object(actor=request.user, instance=obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.delete_object(actor=request.user, instance=obj)


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ("name", "region", "role")
    list_filter = ("role", "region")
    search_fields = ("name", "region", "description")


@admin.register(Resource)
class ResourceAdmin(AuditedAdmin):
    list_display = (
        "name",
        "platform",
        "tier",
        "environment",
        "owner",
        "primary_site",
        "dr_site",
        "rpo_target_seconds",
        "enabled",
    )
    list_filter = ("platform", "tier", "environment", "primary_site", "dr_site", "enabled")
    search_fields = ("name", "owner")
    list_select_related = ("primary_site", "dr_site")
    fieldsets = (
        (None, {"fields": ("name", "platform", "tier", "environment", "owner", "enabled")}),
        ("Sites", {"fields": ("primary_site", "dr_site")}),
        ("Connection", {"fields": ("connection", "secret_ref", "timeout_seconds")}),
        (
            "Readiness thresholds",
            {
                "fields": (
                    "rpo_target_seconds",
                    "yellow_lag_seconds",
                    "red_lag_seconds",
                    "freshness_seconds",
                    "collect_interval_seconds",
                )
            },
        ),
        (
            "Heartbeat",
            {"fields": ("heartbeat_table", "heartbeat_column", "heartbeat_max_age_seconds")},
        ),
    )


class MembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 1
    ordering = ("position",)
    autocomplete_fields = ("resource",)


@admin.register(ResourceGroup)
class ResourceGroupAdmin(AuditedAdmin):
    list_display = ("name", "tier", "member_count")
    list_filter = ("tier",)
    search_fields = ("name", "description")
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, obj: ResourceGroup) -> int:
        return obj.memberships.count()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Membership edits are recorded as one "members changed" event with the order before
        # and after, the same event the API writes.
        group = form.instance
        formset.save(commit=False)
        members = [
            (f.cleaned_data["position"], f.cleaned_data["resource"])
            for f in formset.forms
            if f.cleaned_data
            and not f.cleaned_data.get("DELETE")
            and f.cleaned_data.get("resource") is not None
        ]
        ordered = [resource for _, resource in sorted(members, key=lambda item: item[0])]
        services.group_set_members(actor=request.user, group=group, resources=ordered)
