"""What the session remembers about how its user logged in (method, acr/amr, MFA verdict).

Stored under one key so /api/v1/me/ and mfa_ok() read the same facts. No tokens are kept.
"""

from __future__ import annotations

from typing import Any

AUTH_SESSION_KEY = "bc_auth"
SSO_ERROR_SESSION_KEY = "bc_sso_error"


def login_info(request: Any) -> dict[str, Any]:
    session = getattr(request, "session", None)
    if session is None:
        return {}
    info = session.get(AUTH_SESSION_KEY)
    return info if isinstance(info, dict) else {}


def remember_login_method(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_in receiver: OIDC logins bring their facts, anything else was a password."""
    if request is None or getattr(request, "session", None) is None:
        return
    info = getattr(user, "_bc_login_info", None) or {"method": "password"}
    request.session[AUTH_SESSION_KEY] = info
