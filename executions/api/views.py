"""Execution API: start a request, run its prechecks, watch and continue executions."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors as approval_selectors
from bcservice.api.permissions import RolePermission
from bcservice.roles import OPERATOR
from executions import prechecks, selectors, services
from executions.api.serializers import ExecutionSerializer, StartedSerializer, StartSerializer


def _visible_request(request: Request, pk: int):
    return get_object_or_404(approval_selectors.requests_for(request.user), pk=pk)


class StartView(APIView):
    permission_classes = [RolePermission]
    write_roles = (OPERATOR,)

    @extend_schema(
        request=StartSerializer,
        responses={202: StartedSerializer, 400: OpenApiResponse(), 409: OpenApiResponse()},
    )
    def post(self, request: Request, pk: int) -> Response:
        req = _visible_request(request, pk)
        body = StartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        execution = services.execution_start(actor=request.user, request=req, **body.validated_data)
        return Response(
            {"execution": execution.pk, "state": execution.state}, status=status.HTTP_202_ACCEPTED
        )


class PrecheckView(APIView):
    permission_classes = [RolePermission]
    write_roles = (OPERATOR,)

    @extend_schema(request=None, responses={200: OpenApiResponse(description="precheck report")})
    def post(self, request: Request, pk: int) -> Response:
        req = _visible_request(request, pk)
        return Response(prechecks.run_prechecks(actor=request.user, request=req))


class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [RolePermission]
    write_roles = (OPERATOR,)
    serializer_class = ExecutionSerializer

    def get_queryset(self):
        return selectors.executions_for(self.request.user)

    @extend_schema(request=None, responses={200: ExecutionSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"], url_path="continue")
    def continue_(self, request: Request, pk: int) -> Response:
        execution = self.get_object()
        services.execution_continue(actor=request.user, execution=execution)
        execution.refresh_from_db()
        return Response(ExecutionSerializer(execution).data)
