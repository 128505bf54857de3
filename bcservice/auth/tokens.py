"""API tokens: ``Authorization: Token <value>``, checked against a stored SHA-256 digest.

A token is 256 random bits, so a fast unsalted hash is enough (the same reasoning as GitHub's
tokens): nobody can guess a preimage, and lookup by digest needs no per-row work. Last use is
written at most once a minute per token, so a busy exporter does not turn reads into writes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

# Recognisable by secret scanners and people; not a secret itself.
TOKEN_PREFIX = "bct_"  # noqa: S105
PREFIX_SHOWN = 12  # "bct_" and 8 random characters: enough to tell tokens apart
LAST_USED_GRANULARITY = timedelta(seconds=60)


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def token_for_value(value: str) -> Any | None:
    """The active ApiToken whose digest matches ``value`` (with its user loaded), or None."""
    from bcservice.accounts.models import ApiToken

    if not value or len(value) > 200:
        return None
    token = (
        ApiToken.objects.active().select_related("user").filter(digest=token_digest(value)).first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
        # Conditional update: concurrent requests write it once, not once each.
        type(token).objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_GRANULARITY)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


class ApiTokenAuthentication(BaseAuthentication):
    """DRF authentication for ``Authorization: Token <value>``; ``request.auth`` is the ApiToken."""

    keyword = "Token"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid token header.")
        try:
            value = parts[1].decode("ascii")
        except UnicodeError as exc:
            raise AuthenticationFailed("Invalid token header.") from exc
        token = token_for_value(value)
        if token is None:
            # One message for unknown, revoked, expired and inactive: no oracle for guessers.
            raise AuthenticationFailed("Invalid token.")
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describe the token header in the OpenAPI schema."""

    target_class = "bcservice.auth.tokens.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'API token, sent as "Token <value>".',
        }
