"""``GET /api/v1/requests/export/``: requests with their approvals, for auditors and admins.

Always a streamed file (``format=json`` a JSON document, ``jsonl`` JSON Lines, ``csv``); filters
are checked first (400 with field errors). Read-only like every audit route.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from approvals import exports as request_exports
from approvals.choices import RequestKind, RequestState
from audit import exports
from audit.api.serializers import MAX_INT, TimeRangeQuerySerializer
from audit.api.views import AuditReadOnly
from inventory.models import Resource, ResourceGroup

EXPORT_RESPONSES = {
    (200, "application/json"): OpenApiTypes.OBJECT,
    (200, "application/x-ndjson"): OpenApiTypes.STR,
    (200, "text/csv"): OpenApiTypes.STR,
}


class ExportQuerySerializer(TimeRangeQuerySerializer):
    """Filters shared by the request and execution exports (``since``/``until``, ``format``,
    ``kind``, ``resource``, ``group``); ``state`` is each export's own."""

    format = serializers.ChoiceField(
        choices=exports.DOCUMENT_FORMATS,
        default="json",
        help_text="json: one JSON document; jsonl: JSON Lines; csv. Always streamed.",
    )
    kind = serializers.ChoiceField(choices=RequestKind.choices, required=False)
    resource = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, help_text="Resource id."
    )
    group = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, help_text="Resource group id."
    )

    def validate_resource(self, value: int) -> int:
        if not Resource.objects.filter(pk=value).exists():
            raise serializers.ValidationError("No resource with this id.")
        return value

    def validate_group(self, value: int) -> int:
        if not ResourceGroup.objects.filter(pk=value).exists():
            raise serializers.ValidationError("No group with this id.")
        return value


class RequestExportQuerySerializer(ExportQuerySerializer):
    since = serializers.DateTimeField(
        required=False, help_text="Created at or after (inclusive), ISO 8601."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Created before (exclusive), ISO 8601."
    )
    state = serializers.ChoiceField(choices=RequestState.choices, required=False)


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}


class RequestExportView(AuditReadOnly, APIView):
    @extend_schema(
        operation_id="requests_export",
        parameters=[RequestExportQuerySerializer],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request) -> Any:
        """Every request (created in the time range) with its approvals, as one streamed file
        that carries the audit checkpoint covering it."""
        query = RequestExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        fmt = params.pop("format")
        queryset = request_exports.requests_matching(**params)
        export = request_exports.requests_export(queryset, filters=jsonable(params))
        return exports.streaming_response(export, fmt)
