"""Audit API: events, verification, checkpoints, public keys, configuration history.

Auditors and admins read everything here; nobody writes anything: every route allows only GET
(HEAD, OPTIONS), write methods are refused by the permission (403) before anything else runs.
``format=jsonl|csv`` streams a whole file in constant memory; ``format=json`` (the default) is
cursor-paginated, stable while new events arrive.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import conf, exports, history, selectors
from audit.api.serializers import (
    CheckpointSerializer,
    EventQuerySerializer,
    EventSerializer,
    HistoryQuerySerializer,
    HistoryRecordSerializer,
    HistorySourceSerializer,
    PublicKeySerializer,
    VerifySerializer,
)
from audit.models import AuditCheckpoint, AuditEvent
from audit.signing import load_public_keys, public_pem
from audit.verification import verify_all
from bcservice.api.pagination import SequenceCursorPagination
from bcservice.api.permissions import RolePermission
from bcservice.roles import GLOBAL_READ_ROLES

# ?format=jsonl|csv answers a stream (audit.exports.CONTENT_TYPES) instead of the JSON page.
_STREAM_RESPONSES = {
    (200, "application/x-ndjson"): OpenApiTypes.STR,
    (200, "text/csv"): OpenApiTypes.STR,
}
_TEXT_FILTERS = ("kind", "actor", "actor_id", "object_type", "object_id", "since", "until")


class AuditReadOnly:
    """Auditor and admin may read; no role may write (RolePermission with no write roles)."""

    permission_classes = [RolePermission]
    read_roles = GLOBAL_READ_ROLES
    write_roles: tuple[str, ...] = ()
    http_method_names = ["get", "head", "options"]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # ``format`` names our export formats, not DRF renderers: answer in JSON (errors and
        # pages) and let the view stream the file; an unknown value becomes a 400 in the view.
        if request.query_params.get("format") not in (None, "json"):
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)  # type: ignore[misc]


class CheckpointedCursorPagination(SequenceCursorPagination):
    """Pages of events, each with the signed checkpoint that covers it."""

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        last = self.page[-1].seq if self.page else None
        checkpoint = selectors.latest_checkpoint(last) if last is not None else None
        response.data["checkpoint"] = checkpoint.document() if checkpoint else None
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["checkpoint"] = {"type": "object", "nullable": True}
        return schema


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}


class EventListView(AuditReadOnly, generics.ListAPIView):
    serializer_class = EventSerializer
    pagination_class = CheckpointedCursorPagination
    queryset = AuditEvent.objects.none()

    @extend_schema(
        parameters=[EventQuerySerializer],
        responses={
            (200, "application/json"): EventSerializer(many=True),
            **_STREAM_RESPONSES,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        query = EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        fmt = params.pop("format")
        queryset = selectors.events(**params)
        if fmt in exports.STREAM_FORMATS:
            filtered = any(params.get(name) not in (None, "") for name in _TEXT_FILTERS)
            export = exports.events_export(queryset, filters=_jsonable(params), filtered=filtered)
            return exports.streaming_response(export, fmt)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class VerifyView(AuditReadOnly, APIView):
    @extend_schema(responses=VerifySerializer)
    def get(self, request: Request) -> Response:
        """Verify the whole chain, and against every exported signed checkpoint."""
        return Response(verify_all().as_dict())


class CheckpointListView(AuditReadOnly, generics.ListAPIView):
    """Signed checkpoints, newest first, exactly as exported."""

    serializer_class = CheckpointSerializer
    queryset = AuditCheckpoint.objects.all()
    pagination_class = type(
        "CheckpointPagination", (CursorPagination,), {"ordering": "-seq", "page_size": 100}
    )


class PublicKeysView(AuditReadOnly, APIView):
    @extend_schema(responses=PublicKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        """The public key(s) checkpoints are verified with, for offline verification."""
        try:
            keys = load_public_keys(conf.public_key_file())
        except (OSError, ValueError):
            keys = {}
        return Response(
            [{"key_id": kid, "pem": public_pem(key).decode()} for kid, key in keys.items()]
        )


class HistoryIndexView(AuditReadOnly, APIView):
    @extend_schema(
        operation_id="audit_config_history_sources", responses=HistorySourceSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        """The configuration histories that can be exported."""
        return Response(
            [
                {
                    "name": source.name,
                    "model": source.model_label,
                    "description": source.description,
                    "url": request.build_absolute_uri(f"{source.name}/"),
                }
                for source, _model in history.sources()
            ]
        )


class HistoryPagination(CursorPagination):
    ordering = "history_id"
    page_size = 200
    page_size_query_param = "page_size"
    max_page_size = 2000


class HistoryListView(AuditReadOnly, generics.ListAPIView):
    """Who changed what and when, for one registered configuration model."""

    serializer_class = HistoryRecordSerializer
    pagination_class = HistoryPagination
    queryset = AuditEvent.objects.none()  # for the schema; the real one depends on the name

    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={
            (200, "application/json"): HistoryRecordSerializer(many=True),
            **_STREAM_RESPONSES,
        },
    )
    def get(self, request: Request, name: str) -> Any:
        found = history.source(name)
        if found is None:
            raise Http404
        source, model = found
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        fmt = params.pop("format")
        try:
            records = history.records(model, **params)
        except ValueError as exc:
            raise ValidationError({"object_id": [str(exc)]}) from exc
        if fmt in exports.STREAM_FORMATS:
            rows = history.history_rows(model, records)
            count: dict[str, int] = {"records": 0}

            def counted() -> Any:
                for row in rows:
                    count["records"] += 1
                    yield tuple(row[name] for name in history.HISTORY_COLUMNS)

            export = exports.Export(
                kind=f"audit.config_history.{source.name}",
                columns=history.HISTORY_COLUMNS,
                rows=counted(),
                header={
                    "format": "bcservice.audit.config_history",
                    "version": exports.EXPORT_VERSION,
                    "source": source.name,
                    "model": source.model_label,
                    "filters": _jsonable(params),
                },
                trailer=lambda: dict(count),
                filename=f"config-history-{source.name}",
            )
            return exports.streaming_response(export, fmt)
        page = self.paginate_queryset(records)
        differ = history.Differ(model)
        return self.get_paginated_response([differ.row(record) for record in page])
