"""Inventory in the Django admin. Saves and deletes go through inventory.services so that every
change is validated the same way as in the API and lands in the audit log and history.

Monitoring in the admin: a status column on the resource list, the status board (the
"Resource statuses" page, refreshed by htmx; one view serves the page and its partial), and a
"test connection" button and action that show what the connector sees without saving anything.
The connector call is handed in by the connectors app (``register_connection_tester``) because
inventory must not import connectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from inventory import history, readiness, selectors, services
from inventory.cmdb.admin_import import CmdbImportMixin
from inventory.models import GroupMembership, Resource, ResourceGroup, ResourceStatus, Site

BOARD_REFRESH_SECONDS = 5
BOARD_MAX_ROWS = 500  # a page refreshed every few seconds must stay small
MAX_TESTS_PER_ACTION = 10
_connection_tester: Callable[[Resource], dict[str, Any]] | None = None


def register_connection_tester(tester: Callable[[Resource], dict[str, Any]]) -> None:
    """Called by the connectors app: ``tester(resource)`` observes once and saves nothing."""
    global _connection_tester
    _connection_tester = tester


def _run_test(resource: Resource) -> dict[str, Any]:
    if _connection_tester is None:
        return {"resource": resource.name, "error": "No connection tester is installed."}
    return _connection_tester(resource)


def status_badge(state: str, visibility: str) -> str:
    """State as colour AND text (colour alone fails people and printers)."""
    lost = " visibility lost" if visibility == "lost" else ""
    return format_html(
        '<span class="bc-badge bc-{}">{}</span>{}',
        state,
        state.upper(),
        format_html(' <span class="bc-badge bc-lost">{}</span>', lost.strip()) if lost else "",
    )


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
class ResourceAdmin(CmdbImportMixin, AuditedAdmin):
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
        "status_column",
        "current_site_column",
        "last_passed_drill_at",
    )
    list_filter = (
        "platform",
        "tier",
        "environment",
        "primary_site",
        "dr_site",
        "enabled",
        "status__state",
        "status__visibility",
    )
    search_fields = ("name", "owner")
    list_select_related = ("primary_site", "dr_site", "current_site", "status")
    # Recorded by executions only (inventory.services.resource_record_move / _record_drill).
    readonly_fields = (
        "current_site_column",
        "current_site_changed_at",
        "last_passed_drill_at",
        "drill_due",
    )
    actions = ["test_connection_action"]
    change_form_template = "admin/inventory/resource/change_form.html"
    # Adds "Import from CMDB" (inventory.cmdb.admin_import) to the status board link.
    change_list_template = "admin/inventory/cmdb_change_list.html"
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
        (
            "Current site and drills (recorded by executions)",
            {
                "fields": (
                    "current_site_column",
                    "current_site_changed_at",
                    "last_passed_drill_at",
                    "drill_due",
                )
            },
        ),
    )

    @admin.display(description="status", ordering="status__state")
    def status_column(self, obj: Resource) -> str:
        evaluation = history.current_status(obj)
        return status_badge(evaluation.state, evaluation.visibility)

    @admin.display(description="current site", ordering="current_site__name")
    def current_site_column(self, obj: Resource) -> str:
        if obj.pk is None:
            return "-"
        if not obj.away_from_home:
            return f"{obj.primary_site} (home)"
        return format_html(
            '{} <span class="bc-badge bc-yellow">AWAY from {}</span>',
            obj.current_site,
            obj.primary_site,
        )

    @admin.display(description="next drill due")
    def drill_due(self, obj: Resource) -> str:
        due = readiness.drill_due_at(obj) if obj.pk is not None else None
        cadence = readiness.drill_cadence_days(obj.tier) if obj.tier else None
        if due is None:
            return "-"
        return f"{due:%Y-%m-%d %H:%M} UTC (tier cadence {cadence} days)"

    def get_urls(self) -> list:
        urls = [
            path(
                "<int:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="inventory_resource_test_connection",
            ),
        ]
        return urls + super().get_urls()

    def _render_tests(self, request: HttpRequest, results: list[dict[str, Any]]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Test connection",
            "results": results,
        }
        return TemplateResponse(request, "admin/inventory/resource/test_connection.html", context)

    def test_connection_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        resource = get_object_or_404(selectors.resources_for(request.user), pk=object_id)
        if not self.has_change_permission(request, resource):
            raise PermissionDenied
        if request.method != "POST":
            # Connecting to a target is an action: ask first, run on POST (CSRF-protected).
            return self._render_tests(request, [{"resource": resource.name, "pending": True}])
        return self._render_tests(request, [_run_test(resource)])

    @admin.action(
        description="Test connection (observe once, save nothing)", permissions=["change"]
    )
    def test_connection_action(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        resources = list(queryset[: MAX_TESTS_PER_ACTION + 1])
        if len(resources) > MAX_TESTS_PER_ACTION:
            self.message_user(
                request,
                f"Select at most {MAX_TESTS_PER_ACTION} resources to test at once.",
                messages.WARNING,
            )
            return None
        return self._render_tests(request, [_run_test(r) for r in resources])


@admin.register(ResourceStatus)
class StatusBoardAdmin(admin.ModelAdmin):
    """The status board: every resource with state (colour and text), visibility, lag, age and
    reasons, refreshed every few seconds by htmx. Read-only; statuses are written by collection.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        resources = selectors.resources_for(request.user).select_related("status")
        platform = request.GET.get("platform", "")
        if platform:
            resources = resources.filter(platform=platform)
        rows = history.board_rows(resources)
        counts = {state: 0 for state in ("red", "yellow", "green")}
        lost = 0
        for row in rows:
            counts[row.evaluation.state] = counts.get(row.evaluation.state, 0) + 1
            lost += row.evaluation.visibility == "lost"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Status board",
            # Worst first, so a cap loses only the greenest rows; the counts cover all.
            "rows": rows[:BOARD_MAX_ROWS],
            "hidden": max(0, len(rows) - BOARD_MAX_ROWS),
            "counts": counts,
            "lost": lost,
            "refresh_seconds": BOARD_REFRESH_SECONDS,
            "board_url": reverse("admin:inventory_resourcestatus_changelist"),
            "query": request.GET.urlencode(),
        }
        # One view, two renderings: the page, or only the board for htmx's refresh.
        template = (
            "inventory/_status_board.html"
            if getattr(request, "htmx", False)
            else "admin/inventory/status_board.html"
        )
        return TemplateResponse(request, template, context)


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
