"""The /oidc/ login and callback views: mozilla-django-oidc's, made safe to leave mounted.

When OIDC is not configured they answer 404; when the IdP cannot be reached or refuses, the
person is sent to the login page (``LOGIN_REDIRECT_URL_FAILURE``) with a reason in the session,
and the log gets the error's kind, never a token or the client secret. Never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from bcservice.auth.oidc import OidcConfigError, oidc_enabled, setting
from bcservice.auth.session import AUTH_SESSION_KEY, SSO_ERROR_SESSION_KEY

logger = logging.getLogger(__name__)

# What can go wrong between us and the IdP; each becomes a failed login, not an error page.
_IDP_ERRORS = (requests.RequestException, OidcConfigError, SuspiciousOperation, jwt.PyJWTError)


def _failure(request: HttpRequest, reason: str) -> HttpResponse:
    if getattr(request, "session", None) is not None:
        request.session.setdefault(SSO_ERROR_SESSION_KEY, reason)
    return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL_FAILURE)


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"{type(exc).__name__} (HTTP {exc.response.status_code})"
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__  # its text can carry the request URL and body
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class OIDCLoginView(OIDCAuthenticationRequestView):
    """GET /oidc/authenticate/?next=… redirects to the IdP's authorization endpoint."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Skip the parent's settings reads at construction: they would fail while OIDC is off.
        View.__init__(self, *args, **kwargs)

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:
        return setting("OIDC_OP_AUTHORIZATION_ENDPOINT")

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT  # noqa: B018 (resolve discovery before building the URL)
        except OidcConfigError as exc:
            logger.warning("OIDC login cannot start: %s", exc)
            return _failure(request, "The identity provider cannot be reached; try again later.")
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """GET /oidc/callback/?code=…&state=…: exchange the code, check the tokens, log in."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except _IDP_ERRORS as exc:
            logger.warning("OIDC callback failed: %s", _describe(exc))
            return _failure(request, "Single sign-on failed; try again.")

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        # Also on a re-login by the same user, where Django's login() (and its signal) is
        # skipped: the session must describe this login, not the previous one.
        info = getattr(self.user, "_bc_login_info", None)
        if info:
            self.request.session[AUTH_SESSION_KEY] = info
        self.request.session.pop(SSO_ERROR_SESSION_KEY, None)
        return response

    def login_failure(self) -> HttpResponse:
        return _failure(self.request, "Single sign-on failed; try again.")
