"""Reads of the inventory, filtered by what the user may see: the one way in for API and admin.

Scope: admins and auditors see everything. Anyone else with a role sees everything unless they
hold object permissions (django-guardian ``view_resource`` on resources or ``view_resourcegroup``
on groups), in which case they see only those resources and the members of those groups.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from guardian.models import GroupObjectPermission, UserObjectPermission

from bcservice.roles import GLOBAL_READ_ROLES, has_role, user_roles
from inventory.models import Resource, ResourceGroup, Site


def _scope(user: Any) -> tuple[set[int], set[int]] | None:
    """(resource ids, group ids) the user is limited to, or None when not limited."""
    if has_role(user, *GLOBAL_READ_ROLES):
        return None
    cached = getattr(user, "_bc_scope", False)
    if cached is not False:
        return cached
    cts = ContentType.objects.get_for_models(Resource, ResourceGroup)
    resource_ct, group_ct = cts[Resource], cts[ResourceGroup]
    codenames = ("view_resource", "view_resourcegroup")
    user_perms = UserObjectPermission.objects.filter(
        user=user, permission__codename__in=codenames, content_type__in=[resource_ct, group_ct]
    ).values_list("content_type_id", "object_pk")
    group_perms = GroupObjectPermission.objects.filter(
        group__in=user.groups.all(),
        permission__codename__in=codenames,
        content_type__in=[resource_ct, group_ct],
    ).values_list("content_type_id", "object_pk")
    resources: set[int] = set()
    groups: set[int] = set()
    for ct_id, pk in [*user_perms, *group_perms]:
        (resources if ct_id == resource_ct.id else groups).add(int(pk))
    scope = None if not resources and not groups else (resources, groups)
    user._bc_scope = scope
    return scope


def resources_for(user: Any) -> QuerySet[Resource]:
    qs = Resource.objects.select_related("primary_site", "dr_site", "current_site")
    if not user_roles(user):
        return qs.none()
    scope = _scope(user)
    if scope is None:
        return qs
    resource_ids, group_ids = scope
    return qs.filter(Q(pk__in=resource_ids) | Q(memberships__group_id__in=group_ids)).distinct()


def groups_for(user: Any) -> QuerySet[ResourceGroup]:
    qs = ResourceGroup.objects.all()
    if not user_roles(user):
        return qs.none()
    scope = _scope(user)
    if scope is None:
        return qs
    _, group_ids = scope
    return qs.filter(pk__in=group_ids)


def sites_for(user: Any) -> QuerySet[Site]:
    # Sites hold no sensitive data; anyone with a role may list them.
    return Site.objects.all() if user_roles(user) else Site.objects.none()


def group_members(group: ResourceGroup) -> list[Resource]:
    return [
        m.resource for m in group.memberships.select_related("resource").order_by("position", "id")
    ]
