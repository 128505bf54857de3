"""/api/v1/me/: who the caller is, what they may do and how they logged in (for the React app),
and /api/v1/auth/options/: how one may log in here (for login pages, no login needed)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bcservice.accounts.models import ApiToken
from bcservice.accounts.selectors import identity_of
from bcservice.auth import mfa
from bcservice.auth.backends import local_login_policy
from bcservice.auth.oidc import oidc_enabled
from bcservice.auth.session import SSO_ERROR_SESSION_KEY, login_info
from bcservice.roles import user_roles
from inventory import selectors as inventory_selectors

_IDS_OR_ALL = serializers.JSONField(help_text='"all", or a list of ids')

MeSerializer = inline_serializer(
    name="Me",
    fields={
        "username": serializers.CharField(),
        "display_name": serializers.CharField(),
        "email": serializers.CharField(),
        "roles": serializers.ListField(child=serializers.CharField()),
        "resources": _IDS_OR_ALL,
        "groups": _IDS_OR_ALL,
        "auth_method": serializers.ChoiceField(["oidc", "password", "token", "session"]),
        "breakglass": serializers.BooleanField(),
        "approver_mfa": inline_serializer(
            name="ApproverMfa",
            fields={
                "required": serializers.BooleanField(),
                "ok": serializers.BooleanField(),
                "reason": serializers.CharField(),
                "withheld_roles": serializers.ListField(child=serializers.CharField()),
            },
        ),
    },
)

AuthOptionsSerializer = inline_serializer(
    name="AuthOptions",
    fields={
        "oidc": serializers.BooleanField(),
        "oidc_login_url": serializers.CharField(),
        "local_login": serializers.ChoiceField(["all", "breakglass", "none"]),
        "sso_error": serializers.CharField(),
    },
)


def _auth_method(request: Request) -> str:
    if isinstance(request.auth, ApiToken):
        return "token"
    return login_info(request).get("method", "session")


def _scope(user: Any) -> tuple[Any, Any]:
    if not user_roles(user):
        return [], []
    # inventory.selectors decides scope for every endpoint; ask it, never re-derive it here.
    if inventory_selectors._scope(user) is None:
        return "all", "all"
    resources = inventory_selectors.resources_for(user).values_list("pk", flat=True)
    groups = inventory_selectors.groups_for(user).values_list("pk", flat=True)
    return sorted(resources), sorted(groups)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer, summary="The caller: roles, scope, login method")
    def get(self, request: Request) -> Response:
        user = request.user
        roles = sorted(user_roles(user))
        resources, groups = _scope(user)
        identity = identity_of(user)
        want_acr, want_amr = mfa.required()
        ok, reason = mfa.mfa_ok(request)
        info = login_info(request)
        return Response(
            {
                "username": user.get_username(),
                "display_name": user.get_full_name() or user.get_username(),
                "email": user.email,
                "roles": roles,
                "resources": resources,
                "groups": groups,
                "auth_method": _auth_method(request),
                "breakglass": bool(identity and identity.breakglass),
                "approver_mfa": {
                    "required": bool(want_acr or want_amr),
                    "ok": ok,
                    "reason": reason or info.get("approver_refusal", ""),
                    "withheld_roles": list(info.get("withheld_roles", [])),
                },
            }
        )


class AuthOptionsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=AuthOptionsSerializer, summary="How one may log in here")
    def get(self, request: Request) -> Response:
        # The reason for a refused single sign-on is shown once, to the browser it happened to.
        error = (
            request.session.pop(SSO_ERROR_SESSION_KEY, "") if hasattr(request, "session") else ""
        )
        return Response(
            {
                "oidc": oidc_enabled(),
                "oidc_login_url": "/oidc/authenticate/",
                "local_login": local_login_policy(),
                "sso_error": error,
            }
        )
