"""User and role administration (local accounts); every change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit import services as audit
from bcservice.accounts.services import api_token_rotate
from bcservice.roles import STAFF_ROLES, parse_roles


@transaction.atomic
def user_set_roles(
    *, actor: Any, username: str, roles: list[str], password: str | None = None
) -> tuple[Any, bool]:
    """Create or update a local user so that it holds exactly ``roles``. Returns (user, created)."""
    roles = parse_roles(roles)
    User = get_user_model()
    user, created = User.objects.select_for_update().get_or_create(username=username)
    before = None if created else {"roles": sorted(user.groups.values_list("name", flat=True))}
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = any(r in STAFF_ROLES for r in roles)
    user.is_active = True
    user.save()
    user.groups.set(Group.objects.filter(name__in=roles))
    audit.record(
        action="user.created" if created else "user.roles_set",
        actor=actor,
        obj=user,
        object_name=username,
        before=before,
        after={"roles": sorted(roles), "password_changed": bool(password)},
    )
    return user, created


@transaction.atomic
def user_rotate_token(*, actor: Any, user: Any) -> str:
    """Revoke the user's API tokens, issue a new one and return its value; it is shown only once
    (only a digest is stored, see bcservice.auth.tokens)."""
    token, value = api_token_rotate(actor=actor, user=user)
    audit.record(
        action="token.rotated",
        actor=actor,
        obj=user,
        object_name=user.get_username(),
        after={"token_id": token.pk, "name": token.name, "prefix": token.prefix},
    )
    return value
