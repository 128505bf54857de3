"""The admin's "Import from CMDB" page: upload -> preview (the dry run) -> confirm -> apply.

A mixin for ``ResourceAdmin``, kept here so the admin module only wires it in. It uses the same
``inventory.cmdb`` functions as ``manage.py cmdb_sync``, so both validate and apply alike.

django-import-export builds the export (``cmdb-export/``, ``inventory.cmdb.export``): the same
columns the import reads, so re-importing it changes nothing.

Why not django-import-export's ImportMixin: it saves row by row through its own resource classes
(and its own idea of a dry run inside a rolled-back transaction), so every save would have to be
re-routed to ``inventory.services`` and its per-row errors mapped back to our reasons. One planner
for the command and the admin keeps the rules (CMDB-owned fields only, nothing partial) in one
place.

The uploaded text waits in the session between preview and confirmation (sessions are in the
database, so this works across web replicas), and the confirmation carries the fingerprint of
the plan that was shown: if the inventory changed in between, nothing is applied and the new
plan is shown instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from inventory import cmdb, selectors
from inventory.cmdb.export import FORMATS, export_text
from inventory.cmdb.source import max_bytes

SESSION_KEY = "bc_cmdb_import"


class UploadForm(forms.Form):
    export = forms.FileField(label="CMDB export (CSV or JSON)")
    create = forms.BooleanField(
        required=False,
        label="Create resources that are not in the inventory yet",
        help_text="The file must then give platform, primary_site, dr_site and connection.",
    )


class CmdbImportMixin:
    """Adds ``<changelist>/cmdb-import/`` to a ModelAdmin of Resource."""

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.cmdb_import_view)  # type: ignore[attr-defined]
        export = self.admin_site.admin_view(self.cmdb_export_view)  # type: ignore[attr-defined]
        own = [
            path("cmdb-import/", view, name="inventory_resource_cmdb_import"),
            path("cmdb-export/", export, name="inventory_resource_cmdb_export"),
        ]
        return own + super().get_urls()  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Django's changelist context has has_add_permission but no has_change_permission,
        # so the template's link needs its own flag.
        extra_context = {
            **(extra_context or {}),
            "cmdb_import_allowed": self.has_change_permission(request),  # type: ignore[attr-defined]
        }
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def cmdb_export_view(self, request: HttpRequest) -> HttpResponse:
        """The resources this admin can see, in the columns the import reads (?format=csv|json)."""
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        fmt = request.GET.get("format", "csv")
        if fmt not in FORMATS:
            return HttpResponseBadRequest("format must be csv or json")
        text = export_text(selectors.resources_for(request.user), fmt)
        response = HttpResponse(text, content_type=f"{FORMATS[fmt]}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="resources-cmdb.{fmt}"'
        return response

    def _cmdb_render(self, request: HttpRequest, **context: Any) -> HttpResponse:
        plan = context.get("plan")
        context.update(
            self.admin_site.each_context(request),  # type: ignore[attr-defined]
            opts=self.model._meta,  # type: ignore[attr-defined]
            title="Import from CMDB",
            plan_data=plan.as_dict() if plan is not None else None,
            fingerprint=plan.fingerprint() if plan is not None else "",
        )
        return TemplateResponse(request, "admin/inventory/cmdb_import.html", context)

    def cmdb_import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        stage = request.POST.get("stage") if request.method == "POST" else None
        if stage == "apply":
            return self._cmdb_apply(request)
        form = UploadForm(request.POST or None, request.FILES or None)
        if stage != "preview" or not form.is_valid():
            return self._cmdb_render(request, form=form)
        create = form.cleaned_data["create"]
        if create and not self.has_add_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        upload = form.cleaned_data["export"]
        try:
            source = cmdb.from_bytes(
                upload.read(max_bytes() + 1),
                name=upload.name,
                content_type=upload.content_type or "",
            )
        except cmdb.CmdbError as exc:
            form.add_error("export", str(exc))
            return self._cmdb_render(request, form=form)
        plan = cmdb.preview(source, create=create)
        request.session[SESSION_KEY] = {
            "text": source.text,
            "fmt": source.fmt,
            "label": source.label,
            "sha256": source.sha256,
            "create": create,
        }
        return self._cmdb_render(request, plan=plan, source=source, create=create)

    def _cmdb_apply(self, request: HttpRequest) -> HttpResponse:
        stored = request.session.get(SESSION_KEY)
        if not stored:
            messages.warning(request, "The preview has expired; upload the export again.")
            return HttpResponseRedirect(reverse("admin:inventory_resource_cmdb_import"))
        if stored["create"] and not self.has_add_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        source = cmdb.Source(stored["text"], stored["fmt"], stored["label"], stored["sha256"])
        try:
            plan = cmdb.apply(
                source,
                actor=request.user,
                create=stored["create"],
                expect=request.POST.get("fingerprint", ""),
            )
        except (cmdb.PlanChanged, cmdb.PlanRejected) as exc:
            messages.error(request, str(exc))
            return self._cmdb_render(request, plan=exc.plan, source=source, create=stored["create"])
        del request.session[SESSION_KEY]
        messages.success(
            request,
            f"CMDB sync of {source.label}: {len(plan.changes)} updated, "
            f"{len(plan.creates)} created, {plan.unchanged} unchanged.",
        )
        return HttpResponseRedirect(reverse("admin:inventory_resource_changelist"))
