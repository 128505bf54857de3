"""Report API: the evidence report of a request and the readiness report for a period.

Both are GET-only and answer in JSON by default. ``format`` names a report format here (html,
csv), not a DRF renderer: content negotiation is bypassed for it (errors stay JSON) and the view
returns the page or file itself. Visibility: the evidence report follows the request (out of
scope: 404); the readiness report covers the resources and drills the user may see (admins and
auditors: everything).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bcservice.api.permissions import RolePermission
from bcservice.api.serializers import QueryDateTimeField
from executions.api.views import _visible_request
from executions.reports import readiness, render
from executions.reports.evidence import evidence_report


class EvidenceQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=("json", "html"),
        default="json",
        help_text="json (default) or html (a printable page).",
    )


class ReadinessQuerySerializer(serializers.Serializer):
    since = QueryDateTimeField(
        required=False, help_text="Start, inclusive, ISO 8601 (default: until - 30 days)."
    )
    until = QueryDateTimeField(required=False, help_text="End, exclusive, ISO 8601 (default: now).")
    tier = serializers.ChoiceField(choices=(1, 2, 3), required=False, help_text="Only this tier.")
    format = serializers.ChoiceField(choices=("json", "csv", "html"), default="json")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        until = attrs.get("until") or now
        since = attrs.get("since") or until - readiness.DEFAULT_PERIOD
        errors: dict[str, list[str]] = {}
        if since >= until:
            errors["until"] = ["Must be after since."]
        elif until - since > readiness.MAX_PERIOD:
            errors["since"] = [
                f"The period may be at most {readiness.MAX_PERIOD.days} days "
                "(history is kept for 90 days)."
            ]
        if since >= now:
            errors.setdefault("since", []).append("Must be in the past.")
        if errors:
            raise serializers.ValidationError(errors)
        attrs["since"], attrs["until"] = since, until
        return attrs


class _ReportView(APIView):
    permission_classes = [RolePermission]
    write_roles: tuple[str, ...] = ()
    http_method_names = ["get", "head", "options"]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        if request.query_params.get("format") not in (None, "json"):
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)


def _page(html: str) -> HttpResponse:
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


class EvidenceView(_ReportView):
    @extend_schema(
        parameters=[EvidenceQuerySerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The evidence report (JSON), or a printable HTML page with "
                "format=html.",
            ),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR),
            400: OpenApiResponse(description="Bad format."),
            404: OpenApiResponse(description="No such request, or not visible to you."),
        },
    )
    def get(self, request: Request, pk: int) -> Any:
        req = _visible_request(request, pk)
        query = EvidenceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = evidence_report(req, generated_by=request.user.get_username())
        if query.validated_data["format"] == "html":
            return _page(render.evidence_html(report))
        return Response(report)


class ReadinessReportView(_ReportView):
    @extend_schema(
        parameters=[ReadinessQuerySerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The readiness report (JSON); format=csv: one row per resource "
                "and per tier; format=html: a printable page.",
            ),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR),
            400: OpenApiResponse(description="Bad period, tier or format (field errors)."),
        },
    )
    def get(self, request: Request) -> Any:
        query = ReadinessQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        period = readiness.Period(params["since"], params["until"])
        report = readiness.readiness_report(request.user, period, tier=params.get("tier"))
        fmt = params["format"]
        if fmt == "html":
            return _page(render.readiness_html(report))
        if fmt == "csv":
            response = HttpResponse(render.readiness_csv(report), content_type="text/csv")
            stamp = period.until.strftime("%Y%m%d")
            days = (period.until - period.since) / timedelta(days=1)
            response["Content-Disposition"] = (
                f'attachment; filename="readiness-{stamp}-{days:g}d.csv"'
            )
            response["Cache-Control"] = "no-store"
            return response
        return Response(report)
