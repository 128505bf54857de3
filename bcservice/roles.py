"""Roles are Django groups with these names; everything that asks "may this user…" starts here.

A role grants a kind of action; django-guardian object permissions (``inventory.view_resource``
and ``inventory.view_resourcegroup``) narrow the objects it applies to (see inventory.selectors).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"
APPROVER_IT = "approver_it"
APPROVER_BUSINESS = "approver_business"
ADMIN = "admin"
AUDITOR = "auditor"

ALL_ROLES = (VIEWER, OPERATOR, APPROVER_IT, APPROVER_BUSINESS, ADMIN, AUDITOR)
APPROVER_ROLES = (APPROVER_IT, APPROVER_BUSINESS)
# Roles that see every object regardless of object-level scope.
GLOBAL_READ_ROLES = (ADMIN, AUDITOR)
# Roles whose holders may use the Django admin (auditors read-only).
STAFF_ROLES = (ADMIN, AUDITOR)

# Apps whose models the admin role manages through the Django admin.
MANAGED_APPS = ("inventory", "approvals", "executions", "notifications", "connectors")
READ_ONLY_APPS = ("audit",)


def user_roles(user: Any) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_bc_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._bc_roles = cached
    return cached


def has_role(user: Any, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def parse_roles(text: str | Iterable[str]) -> list[str]:
    """Split and check a role list; raises ValueError naming unknown roles."""
    items = [r.strip() for r in (text.split(",") if isinstance(text, str) else text) if r.strip()]
    unknown = sorted(set(items) - set(ALL_ROLES))
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(ALL_ROLES)}")
    return items


def sync_role_groups(**kwargs: Any) -> None:
    """Create the role groups and give the admin/auditor groups their model permissions.

    Runs after every migrate so new models are covered without a hand-written data migration.
    """
    from django.contrib.auth.models import Group, Permission

    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ALL_ROLES}
    managed = Permission.objects.filter(content_type__app_label__in=MANAGED_APPS)
    views = Permission.objects.filter(
        content_type__app_label__in=MANAGED_APPS + READ_ONLY_APPS, codename__startswith="view_"
    )
    groups[ADMIN].permissions.set(list(managed) + list(views))
    groups[AUDITOR].permissions.set(list(views))
