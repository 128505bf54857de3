"""OpenID Connect login: a mozilla-django-oidc backend that maps group claims to roles.

Configuration is read when used, not at import, so the service starts while the IdP is down and
tests can point it at a provider started by a fixture. With ``BC_OIDC_ISSUER`` the endpoints come
from the issuer's discovery document (cached for an hour); explicit endpoint settings win.

At every login the user's roles and scope are recomputed from the role mappings of the groups in
that login (bcservice.accounts.services.oidc_login_sync): a group the IdP stops sending takes its
role away. Beyond mozilla-django-oidc's checks this backend also verifies the ID token's audience
and issuer and that userinfo describes the same subject as the ID token.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from bcservice.auth import mfa
from bcservice.auth.session import SSO_ERROR_SESSION_KEY

logger = logging.getLogger(__name__)

DISCOVERY_TTL_SECONDS = 3600
_ENDPOINTS = {
    # mozilla-django-oidc setting name -> discovery document key
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_discovery_lock = threading.Lock()


class OidcConfigError(Exception):
    """The IdP's configuration could not be read; the message is safe to log."""


def oidc_enabled() -> bool:
    """OIDC needs a client id and secret plus an issuer or the explicit endpoints."""
    if not (getattr(settings, "OIDC_RP_CLIENT_ID", "") and settings.OIDC_RP_CLIENT_SECRET):
        return False
    if getattr(settings, "BC_OIDC_ISSUER", ""):
        return True
    return all(getattr(settings, name, "") for name in list(_ENDPOINTS)[:3])


def discovery() -> dict[str, Any]:
    """The issuer's /.well-known/openid-configuration, fetched at most once an hour."""
    issuer = getattr(settings, "BC_OIDC_ISSUER", "")
    if not issuer:
        return {}
    with _discovery_lock:
        cached = _discovery_cache.get(issuer)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(
                url,
                timeout=getattr(settings, "OIDC_TIMEOUT", 10),
                verify=getattr(settings, "OIDC_VERIFY_SSL", True),
            )
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise OidcConfigError(f"cannot read {url}: {type(exc).__name__}") from exc
        if document.get("issuer", "").rstrip("/") != issuer:
            raise OidcConfigError(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}")
        _discovery_cache[issuer] = (time.monotonic(), document)
        return document


def setting(name: str) -> Any:
    """A mozilla-django-oidc setting, with endpoints filled in from discovery when not set."""
    value = getattr(settings, name, None)
    if value or name not in _ENDPOINTS:
        return value
    found = discovery().get(_ENDPOINTS[name])
    if not found and name != "OIDC_OP_JWKS_ENDPOINT":
        raise OidcConfigError(f"{name} is not set and the issuer does not publish it")
    return found


def expected_issuer() -> str:
    return getattr(settings, "BC_OIDC_ISSUER", "") or ""


def claim(claims: dict[str, Any], path: str) -> Any:
    """Read a claim by dotted path ("realm_access.roles"); a literal key with dots wins."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def group_values(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


class OIDCBackend(OIDCAuthenticationBackend):
    """Authorization-code login (PKCE, nonce) ending in a user whose roles match the IdP."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds every backend for every authenticate() call, password logins too: read
        # nothing here (mozilla-django-oidc would, and would fail while OIDC is off).
        self.UserModel = get_user_model()

    # The parent reads these as attributes set in its __init__; here they are read when used.
    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return setting("OIDC_OP_TOKEN_ENDPOINT")

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return setting("OIDC_OP_USER_ENDPOINT")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str | None:
        return setting("OIDC_OP_JWKS_ENDPOINT")

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return settings.OIDC_RP_CLIENT_ID

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return settings.OIDC_RP_CLIENT_SECRET

    @property
    def OIDC_RP_SIGN_ALGO(self) -> str:
        return getattr(settings, "OIDC_RP_SIGN_ALGO", "RS256")

    @property
    def OIDC_RP_IDP_SIGN_KEY(self) -> str | None:
        return getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None)

    def authenticate(self, request: Any, **kwargs: Any) -> Any | None:
        if request is None or "password" in kwargs or not oidc_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token was issued for another client")
        issuer = expected_issuer()
        if issuer and str(payload.get("iss", "")).rstrip("/") != issuer:
            raise SuspiciousOperation("ID token comes from another issuer")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict) -> Any:
        from bcservice.accounts.services import LoginRefused, OidcLogin, oidc_login_sync

        userinfo = self.get_userinfo(access_token, id_token, payload) or {}
        if userinfo.get("sub") not in (None, payload.get("sub")):
            raise SuspiciousOperation("userinfo describes another subject than the ID token")
        claims = {**payload, **userinfo}
        username_claim = getattr(settings, "BC_OIDC_USERNAME_CLAIM", "preferred_username")
        username = str(claim(claims, username_claim) or "").strip()
        if not username or len(username) > 150:
            self._refuse(f"the IdP sent no usable {username_claim!r} claim")
        acr = str(payload.get("acr") or "")
        amr = tuple(str(a) for a in payload.get("amr") or [] if isinstance(a, str))
        login = OidcLogin(
            issuer=str(payload.get("iss", "")).rstrip("/"),
            subject=str(payload.get("sub", "")),
            username=username,
            email=str(claims.get("email") or ""),
            first_name=str(claims.get("given_name") or claims.get("name") or ""),
            last_name=str(claims.get("family_name") or ""),
            groups=group_values(claim(claims, getattr(settings, "BC_OIDC_GROUPS_CLAIM", "groups"))),
            acr=acr,
            amr=amr,
            approver_refusal=mfa.login_shortfall(acr, amr),
        )
        if not login.subject:
            self._refuse("the ID token has no subject")
        try:
            user, withheld = oidc_login_sync(login=login)
        except LoginRefused as exc:
            self._refuse(str(exc))
        user._bc_login_info = {
            "method": "oidc",
            "acr": acr,
            "amr": list(amr),
            "approver_refusal": login.approver_refusal,
            "withheld_roles": withheld,
        }
        return user

    def _refuse(self, reason: str) -> None:
        """Tell the person (through their session) and the log why, then fail the login."""
        request = getattr(self, "request", None)
        if request is not None and getattr(request, "session", None) is not None:
            request.session[SSO_ERROR_SESSION_KEY] = f"Single sign-on refused: {reason}."
        raise SuspiciousOperation(f"OIDC login refused: {reason}")

    def get_user(self, user_id: Any) -> Any | None:
        # Sessions made by this backend end when OIDC is switched off or the user deactivated.
        if not oidc_enabled():
            return None
        try:
            user = self.UserModel._default_manager.get(pk=user_id)
        except self.UserModel.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
