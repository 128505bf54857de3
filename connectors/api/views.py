"""Connectors API: collect one resource now (``POST resources/{id}/collect/``).

It lives here rather than in inventory's API because inventory must not import connectors.
Scope and role checks are the inventory's own: the resource must be visible to the user through
``inventory.selectors`` (404 otherwise), and only operators and admins may trigger collection.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bcservice.api.permissions import RolePermission
from bcservice.roles import ADMIN, OPERATOR
from connectors.collection import CollectionBusy, collect_resource
from inventory import selectors
from inventory.api.serializers import StatusSerializer, status_payload
from inventory.models import ResourceStatus


class CollectNowView(APIView):
    permission_classes = [RolePermission]
    write_roles = (OPERATOR, ADMIN)

    @extend_schema(
        request=None,
        responses={
            200: StatusSerializer,
            404: OpenApiResponse(description="No such resource, or not yours to see"),
            409: OpenApiResponse(description="Another worker is collecting it right now"),
        },
        summary="Collect one resource now and return its new status",
    )
    def post(self, request: Request, pk: int) -> Response:
        resource = get_object_or_404(selectors.resources_for(request.user), pk=pk)
        try:
            new_status = collect_resource(resource.pk, actor=request.user)
        except CollectionBusy:
            current = ResourceStatus.objects.filter(resource=resource).first()
            return Response(
                {
                    "detail": "The resource is being collected right now; try again shortly.",
                    "status": StatusSerializer(status_payload(current, resource)).data,
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(StatusSerializer(status_payload(new_status, resource)).data)
