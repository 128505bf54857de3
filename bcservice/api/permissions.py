"""Role checks for API views: reads need any role, writes need the roles a view names."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from bcservice.roles import ADMIN, user_roles


class RolePermission(BasePermission):
    """Views set ``write_roles`` (default: admin) and optionally ``read_roles`` (default: any)."""

    message = "Your role does not allow this action."

    def has_permission(self, request: Any, view: Any) -> bool:
        roles = user_roles(request.user)
        if not roles:
            return False
        if request.method in SAFE_METHODS:
            read_roles = getattr(view, "read_roles", None)
            return read_roles is None or bool(roles & set(read_roles))
        return bool(roles & set(getattr(view, "write_roles", (ADMIN,))))
