"""Inventory API: sites, resources, groups, lag history, status summary.

Thin: selectors read (scoped to the user), services write. Everything a user can reach goes
through ``inventory.selectors``, so object scope (django-guardian) applies everywhere alike.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bcservice.api.permissions import RolePermission
from inventory import history, selectors, services
from inventory.api.serializers import (
    GroupSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    ResourceSerializer,
    SiteSerializer,
    StatusSummarySerializer,
)
from inventory.filters import GroupFilter, ResourceFilter
from inventory.models import GroupMembership, Resource, ResourceGroup, Site


class _InventoryViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [RolePermission]
    http_method_names = ["get", "post", "patch", "head", "options"]
    model: type

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = self._save(None, serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = self._save(serializer.instance, serializer.validated_data)

    def _save(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.create_or_update(
            actor=self.request.user, model=self.model, instance=instance, data=data
        )


class SiteViewSet(_InventoryViewSet):
    serializer_class = SiteSerializer
    model = Site

    def get_queryset(self):
        return selectors.sites_for(self.request.user)


class ResourceViewSet(_InventoryViewSet):
    serializer_class = ResourceSerializer
    filterset_class = ResourceFilter
    model = Resource

    def get_queryset(self):
        return selectors.resources_for(self.request.user).select_related("status")

    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses=HistorySerializer,
        summary="Lag history: raw samples in the raw window, 5-minute rollups before it",
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        resource = self.get_object()  # 404 outside the user's scope
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since, until, limit = (query.validated_data[k] for k in ("since", "until", "limit"))
        points, truncated = history.history_points(resource.pk, since, until, limit)
        next_url = None
        if truncated and points:
            # The next page starts at the last timestamp (inclusive): points at that instant
            # move there instead of appearing twice, unless they are all this page holds.
            last = points[-1].at
            earlier = [p for p in points if p.at < last]
            next_since = last if earlier else last + timedelta(microseconds=1)
            points = earlier or points
            params = {"since": next_since.isoformat(), "until": until.isoformat()}
            if "limit" in request.query_params:
                params["limit"] = str(limit)
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        payload = {
            "resource": resource.pk,
            "since": since,
            "until": until,
            "count": len(points),
            "truncated": truncated,
            "next": next_url,
            "points": [
                {
                    "at": p.at,
                    "lag_seconds": p.lag_seconds,
                    "lag_bytes": p.lag_bytes,
                    "state": p.state,
                    "visible": p.visible,
                    "resolution_seconds": p.resolution_seconds,
                    "samples": p.samples,
                }
                for p in points
            ],
        }
        return Response(HistorySerializer(payload).data)


class GroupViewSet(_InventoryViewSet):
    serializer_class = GroupSerializer
    filterset_class = GroupFilter
    model = ResourceGroup

    def get_queryset(self):
        # One query for all members with what their status needs (sites: current_site reasons).
        members = GroupMembership.objects.select_related(
            "resource__status",
            "resource__primary_site",
            "resource__dr_site",
            "resource__current_site",
        )
        return selectors.groups_for(self.request.user).prefetch_related(
            Prefetch("memberships", queryset=members)
        )

    @transaction.atomic
    def _save(self, instance: Any, data: dict[str, Any]) -> Any:
        members = data.pop("member_ids", None)
        group = super()._save(instance, data)
        if members is not None:
            services.group_set_members(actor=self.request.user, group=group, resources=members)
        return group


class StatusSummaryView(APIView):
    """Counts per state and per visibility over the resources the user may see."""

    permission_classes = [RolePermission]

    @extend_schema(
        responses=StatusSummarySerializer,
        parameters=[OpenApiParameter("environment", str), OpenApiParameter("platform", str)],
    )
    def get(self, request: Request) -> Response:
        resources = selectors.resources_for(request.user)
        filtered = ResourceFilter(request.query_params, queryset=resources)
        if not filtered.is_valid():
            return Response(filtered.errors, status=400)
        summary = history.status_summary(filtered.qs)
        return Response(StatusSummarySerializer(summary).data)
