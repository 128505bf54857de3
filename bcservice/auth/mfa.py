"""MFA for approvers is the identity provider's job; this module only reads its verdict.

``BC_APPROVER_REQUIRED_ACR`` lists acceptable ``acr`` values (any one will do) and
``BC_APPROVER_REQUIRED_AMR`` acceptable ``amr`` entries (the login's list must contain one).
When either is set, approver roles are withheld from OIDC logins that fall short, and
``mfa_ok`` answers False (with a reason a person can act on) for logins that cannot show it:
password logins, API tokens, or an OIDC login without the required values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from bcservice.auth.session import login_info


def required() -> tuple[list[str], list[str]]:
    """(acceptable acr values, acceptable amr values); both empty means no requirement."""
    return (
        list(getattr(settings, "BC_APPROVER_REQUIRED_ACR", []) or []),
        list(getattr(settings, "BC_APPROVER_REQUIRED_AMR", []) or []),
    )


def describe_requirement() -> str:
    acr, amr = required()
    parts = []
    if acr:
        parts.append(f"acr={acr[0]}" if len(acr) == 1 else f"acr in ({', '.join(acr)})")
    if amr:
        parts.append(f"amr including {' or '.join(amr)}")
    return " and ".join(parts)


def login_shortfall(acr: str, amr: Iterable[str]) -> str:
    """Empty when an OIDC login with these values may hold approver roles, else the reason."""
    want_acr, want_amr = required()
    amr = [str(a) for a in amr or []]
    if (want_acr and acr not in want_acr) or (want_amr and not set(amr) & set(want_amr)):
        had = []
        if want_acr:
            had.append(f"acr={acr or '(none)'}")
        if want_amr:
            had.append(f"amr={','.join(amr) or '(none)'}")
        return (
            f"approver role requires {describe_requirement()}; your login had {' and '.join(had)}"
        )
    return ""


def _token_request(request: Any) -> bool:
    from bcservice.accounts.models import ApiToken

    return isinstance(getattr(request, "auth", None), ApiToken)


def mfa_ok(request_or_user: Any) -> tuple[bool, str]:
    """May this login act as an approver as far as MFA goes? (ok, reason when not ok).

    Pass the request when there is one: its session says how this login happened. With only a
    user, the last OIDC login recorded for that user is judged instead.
    """
    want_acr, want_amr = required()
    if not want_acr and not want_amr:
        return True, ""
    need = f"approver role requires {describe_requirement()}"
    if isinstance(request_or_user, HttpRequest | Request):
        request = request_or_user
        if _token_request(request):
            return False, f"{need}; an API token cannot show it, log in through the IdP"
        info = login_info(request)
        if info.get("method") != "oidc":
            return False, f"{need}; you logged in with a local password, not through the IdP"
        reason = login_shortfall(info.get("acr", ""), info.get("amr", []))
        return not reason, reason
    from bcservice.accounts.selectors import identity_of

    identity = identity_of(request_or_user)
    if identity is None or identity.source != "oidc" or identity.last_oidc_login_at is None:
        return False, f"{need}; no login through the IdP is recorded for this user"
    reason = login_shortfall(identity.last_acr, identity.last_amr)
    return not reason, reason
