"""Approvals API: requests and votes, policies, break-glass. Thin: selectors read, services write.

Order of refusals: no role for the route -> 403 (before any lookup), object outside the user's
scope -> 404, the person may not (requester, not eligible) -> 403 with ``code``, the state does
not allow it -> 409 with ``state`` and ``code``. Bad input -> 400 with field errors.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from approvals import selectors, services
from approvals.api.serializers import (
    MAX_ID,
    BreakGlassCreateSerializer,
    BreakGlassSerializer,
    CommentSerializer,
    PolicyPreviewQuerySerializer,
    PolicyPreviewSerializer,
    PolicySerializer,
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestSerializer,
)
from approvals.choices import RequestKind, RequestState
from approvals.exceptions import ApprovalRefused, RequestNotStartable, VoteConflict
from bcservice.api.permissions import RolePermission
from bcservice.roles import ADMIN, ALL_ROLES, APPROVER_ROLES, OPERATOR

_TRUE = {"1", "true", "yes", "on"}


class DomainErrorsMixin:
    """Domain refusals keep their reason code in the response body."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApprovalRefused):
            return Response(
                {"detail": exc.message, "code": exc.code}, status=status.HTTP_403_FORBIDDEN
            )
        if isinstance(exc, VoteConflict | RequestNotStartable):
            return Response(
                {"detail": exc.message, "state": exc.current_state, "code": exc.code},
                status=status.HTTP_409_CONFLICT,
            )
        return super().handle_exception(exc)


class IdFilter(django_filters.NumberFilter):
    """A whole-number id in range: 1.5 or 1e300 is a 400 field error, not a database
    overflow (SQLite raised OverflowError on an id past 64 bits: HTTP 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class RequestFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=RequestState.choices)
    kind = django_filters.ChoiceFilter(choices=RequestKind.choices)
    resource = IdFilter(field_name="resource_id")
    group = IdFilter(field_name="group_id")


class RequestViewSet(
    DomainErrorsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [RolePermission]
    filterset_class = RequestFilter
    lookup_value_regex = r"[0-9]+"
    # Roles allowed to call each write action; the services then decide about the person.
    _write_roles = {
        "create": (OPERATOR,),
        "approve": APPROVER_ROLES,
        "deny": APPROVER_ROLES,
        # The requester (any role) or an admin; the service checks which.
        "cancel": ALL_ROLES,
        "acknowledge_flapping": (ADMIN,),
    }

    @property
    def write_roles(self) -> tuple[str, ...]:
        return tuple(self._write_roles.get(self.action, (ADMIN,)))

    def get_queryset(self):
        return selectors.requests_for(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return RequestCreateSerializer
        if self.action == "list":
            return RequestSerializer
        if self.action in ("approve", "deny", "cancel", "acknowledge_flapping"):
            return CommentSerializer
        return RequestDetailSerializer

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        instance = self.get_queryset().get(pk=pk)
        return Response(
            RequestDetailSerializer(instance, context=self.get_serializer_context()).data,
            status=code,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "waiting_for_me", bool, description="Only requests the caller could approve now."
            )
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        qs = self.filter_queryset(self.get_queryset())
        if request.query_params.get("waiting_for_me", "").lower() in _TRUE:
            qs = selectors.waiting_for(request.user, qs)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RequestSerializer(page, many=True).data)

    @extend_schema(request=RequestCreateSerializer, responses={201: RequestDetailSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = RequestCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        created = services.request_create(actor=request.user, **body.validated_data)
        return self._detail(created.pk, status.HTTP_201_CREATED)

    def _comment(self, request: Request) -> str:
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data["comment"]

    @extend_schema(request=CommentSerializer, responses=RequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        comment = self._comment(request)
        services.request_approve(
            self.get_object(), actor=request.user, comment=comment, login=request
        )
        return self._detail(int(pk))

    @extend_schema(request=CommentSerializer, responses=RequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def deny(self, request: Request, pk: str | None = None) -> Response:
        comment = self._comment(request)
        services.request_deny(self.get_object(), actor=request.user, comment=comment)
        return self._detail(int(pk))

    @extend_schema(request=CommentSerializer, responses=RequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        comment = self._comment(request)
        services.request_cancel(self.get_object(), actor=request.user, reason=comment)
        return self._detail(int(pk))

    @extend_schema(request=CommentSerializer, responses=RequestDetailSerializer)
    @action(detail=True, methods=["post"], url_path="acknowledge-flapping")
    def acknowledge_flapping(self, request: Request, pk: str | None = None) -> Response:
        comment = self._comment(request)
        services.request_acknowledge_flapping(
            self.get_object(), actor=request.user, comment=comment
        )
        return self._detail(int(pk))


class PolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Approval policies, read-only here (admins edit them in the Django admin, with history)."""

    permission_classes = [RolePermission]
    serializer_class = PolicySerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return selectors.policies_all()

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, required=True, enum=RequestKind.values),
            OpenApiParameter("resource", int),
            OpenApiParameter("group", int),
        ],
        responses=PolicyPreviewSerializer,
    )
    @action(detail=False, methods=["get"])
    def preview(self, request: Request) -> Response:
        """The policy a request with this kind and scope would be bound to if created now."""
        query = PolicyPreviewQuerySerializer(
            data=request.query_params.dict(), context=self.get_serializer_context()
        )
        query.is_valid(raise_exception=True)
        return Response(selectors.policy_preview(**query.validated_data))


class GrantFilter(django_filters.FilterSet):
    needs_review = django_filters.CharFilter(
        method="filter_needs_review", label="1: ended and not yet signed off; 0: the others"
    )
    active = django_filters.CharFilter(method="filter_active", label="1: active now; 0: not")

    @staticmethod
    def _flag(value: str) -> bool:
        return value.lower() in _TRUE

    def filter_needs_review(self, queryset, name, value):
        review = selectors.grants_needing_review(queryset)
        return review if self._flag(value) else queryset.exclude(pk__in=review.values("pk"))

    def filter_active(self, queryset, name, value):
        now = timezone.now()
        active = queryset.filter(starts_at__lte=now, ends_at__gt=now)
        return active if self._flag(value) else queryset.exclude(pk__in=active.values("pk"))


class BreakGlassViewSet(
    DomainErrorsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [RolePermission]
    filterset_class = GrantFilter
    lookup_value_regex = r"[0-9]+"
    _write_roles = {
        "create": (OPERATOR, ADMIN),
        "close": (OPERATOR, ADMIN),
        "review": APPROVER_ROLES,
    }

    @property
    def write_roles(self) -> tuple[str, ...]:
        return tuple(self._write_roles.get(self.action, (ADMIN,)))

    def get_queryset(self):
        return selectors.grants_for(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return BreakGlassCreateSerializer
        if self.action in ("review", "close"):
            return CommentSerializer
        return BreakGlassSerializer

    def _out(self, grant: Any, code: int = status.HTTP_200_OK) -> Response:
        return Response(BreakGlassSerializer(grant).data, status=code)

    @extend_schema(request=BreakGlassCreateSerializer, responses={201: BreakGlassSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = BreakGlassCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        grant = services.breakglass_open(actor=request.user, **body.validated_data)
        return self._out(grant, status.HTTP_201_CREATED)

    @extend_schema(request=CommentSerializer, responses=BreakGlassSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: str | None = None) -> Response:
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        grant = services.breakglass_review(
            self.get_object(), actor=request.user, comment=body.validated_data["comment"]
        )
        return self._out(grant)

    @extend_schema(request=None, responses=BreakGlassSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        return self._out(services.breakglass_close(self.get_object(), actor=request.user))
