"""Password logins, limited by ``BC_LOCAL_LOGIN``: all (default), breakglass, or none.

The rule lives in the authentication backend, not in a login view, so every door that checks a
password (the admin login, the app's login page, DRF's session login, a future view) obeys it.
``get_user`` applies it too: after switching to "breakglass", existing password sessions of
ordinary accounts end at their next request.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

logger = logging.getLogger(__name__)

ALL, BREAKGLASS, NONE = "all", "breakglass", "none"


def local_login_policy() -> str:
    return str(getattr(settings, "BC_LOCAL_LOGIN", ALL) or ALL).lower()


def local_login_allowed(user: Any) -> bool:
    """May ``user`` log in with a password under the current policy?"""
    policy = local_login_policy()
    if policy == ALL:
        return True
    if policy == BREAKGLASS:
        from bcservice.accounts.selectors import identity_of

        identity = identity_of(user)
        return identity is not None and identity.breakglass
    return False


class LocalPasswordBackend(ModelBackend):
    """Django's ModelBackend (permissions included) with the local-login policy on top."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any | None:
        if local_login_policy() == NONE:
            return None
        # Check the password first and the policy after, so both refusals cost the same time.
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            return None
        if not local_login_allowed(user):
            logger.info(
                "password login refused by BC_LOCAL_LOGIN=%s for %s",
                local_login_policy(),
                user.get_username(),
            )
            return None
        return user

    def get_user(self, user_id: Any) -> Any | None:
        if local_login_policy() == ALL:
            return super().get_user(user_id)
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("bc_identity").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        if not self.user_can_authenticate(user) or not local_login_allowed(user):
            return None
        return user
