"""Inventory API: sites, resources, groups. Thin: selectors read, services write."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import mixins, viewsets

from bcservice.api.permissions import RolePermission
from inventory import selectors, services
from inventory.api.serializers import GroupSerializer, ResourceSerializer, SiteSerializer
from inventory.filters import GroupFilter, ResourceFilter
from inventory.models import Resource, ResourceGroup, Site


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


class GroupViewSet(_InventoryViewSet):
    serializer_class = GroupSerializer
    filterset_class = GroupFilter
    model = ResourceGroup

    def get_queryset(self):
        return selectors.groups_for(self.request.user).prefetch_related("memberships__resource")

    @transaction.atomic
    def _save(self, instance: Any, data: dict[str, Any]) -> Any:
        members = data.pop("member_ids", None)
        group = super()._save(instance, data)
        if members is not None:
            services.group_set_members(actor=self.request.user, group=group, resources=members)
        return group
