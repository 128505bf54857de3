"""``GET /api/v1/executions/export/``: executions with their steps, for auditors and admins.

Always a streamed file (``format=json`` a JSON document, ``jsonl`` JSON Lines, ``csv``); filters
are checked first (400 with field errors). Read-only like every audit route.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from approvals.api.export_views import EXPORT_RESPONSES, ExportQuerySerializer, jsonable
from audit import exports
from audit.api.serializers import MAX_INT
from audit.api.views import AuditReadOnly
from executions import exports as execution_exports
from executions.choices import ExecutionState


class ExecutionExportQuerySerializer(ExportQuerySerializer):
    since = serializers.DateTimeField(
        required=False,
        help_text="Started at or after (inclusive; queued, if it never started), ISO 8601.",
    )
    until = serializers.DateTimeField(
        required=False, help_text="Started before (exclusive), ISO 8601."
    )
    state = serializers.ChoiceField(choices=ExecutionState.choices, required=False)
    resource = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_INT,
        help_text="Resource id: runs of a request on it, and group runs with a step on it.",
    )
    request = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, help_text="Request id."
    )


class ExecutionExportView(AuditReadOnly, APIView):
    @extend_schema(
        operation_id="executions_export",
        parameters=[ExecutionExportQuerySerializer],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request) -> Any:
        """Every execution (started in the time range) with its steps, overrides, outcome and
        evidence, as one streamed file that carries the audit checkpoint covering it."""
        query = ExecutionExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        fmt = params.pop("format")
        queryset = execution_exports.executions_matching(**params)
        export = execution_exports.executions_export(queryset, filters=jsonable(params))
        return exports.streaming_response(export, fmt)
