"""Notifications in the Django admin: routes are edited through the audited services (with
history); events, deliveries and alerts are read-only records, with a "retry now" action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from notifications import services
from notifications.choices import ENVIRONMENTS, KNOWN_KINDS, TIERS
from notifications.models import Alert, Delivery, Event, Route


class RouteForm(forms.ModelForm):
    # Checkboxes instead of raw JSON lists.
    tiers = forms.TypedMultipleChoiceField(
        choices=[(t, f"Tier {t}") for t in TIERS],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every tier.",
    )
    environments = forms.MultipleChoiceField(
        choices=[(e, e) for e in ENVIRONMENTS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: every environment. An on-call route takes production only.",
    )

    class Meta:
        model = Route
        fields = [
            "name",
            "enabled",
            "kinds",
            "tiers",
            "environments",
            "channel",
            "target",
            "secret_ref",
            "production_on_call",
            "description",
        ]
        help_texts = {
            "kinds": f"Known kinds: {', '.join(KNOWN_KINDS)}. "
            + (Route._meta.get_field("kinds").help_text)
        }


@admin.register(Route)
class RouteAdmin(SimpleHistoryAdmin):
    form = RouteForm
    list_display = (
        "name",
        "enabled",
        "kinds",
        "tiers",
        "environments",
        "channel",
        "production_on_call",
    )
    list_filter = ("enabled", "channel", "production_on_call")
    search_fields = ("name", "kinds", "description")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.route_save(actor=request.user, route=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.route_delete(actor=request.user, route=obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.route_delete(actor=request.user, route=obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the services and the worker."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("route_name", "channel", "action", "status", "attempts", "last_error", "detail")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "subject", "tier", "environment", "resource_id", "created_at")
    list_filter = ("kind", "tier", "environment")
    search_fields = ("subject",)
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "event",
        "route_name",
        "channel",
        "action",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    list_filter = ("status", "channel", "action")
    search_fields = ("route_name", "dedup_key", "last_error")
    list_select_related = ("event",)
    actions = ["retry_now"]

    @admin.action(description="Retry the selected failed or waiting deliveries now")
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        count = services.deliveries_retry(actor=request.user, deliveries=list(queryset))
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)

    def has_retry_now_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_route")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("resource_id", "condition", "dedup_key", "opened_at", "updated_at")
    list_filter = ("condition",)
