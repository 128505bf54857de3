"""Executions in the admin: read-only, for looking things up."""

from django.contrib import admin
from django.http import HttpRequest

from executions.models import Execution, ExecutionStep


class StepInline(admin.TabularInline):
    model = ExecutionStep
    extra = 0
    can_delete = False
    fields = (
        "position",
        "resource",
        "phase",
        "name",
        "state",
        "started_at",
        "finished_at",
        "detail",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "state", "request", "started_by", "started_at", "finished_at")
    list_filter = ("state", "kind")
    inlines = [StepInline]
    readonly_fields = [f.name for f in Execution._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
