"""Reads for identity: what a set of IdP groups grants, and a user's directly granted scope."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from guardian.models import UserObjectPermission

from bcservice.accounts.models import Identity, RoleMapping
from inventory.models import Resource, ResourceGroup

SCOPE_CODENAMES = {Resource: "view_resource", ResourceGroup: "view_resourcegroup"}


@dataclass(frozen=True)
class Grants:
    """What the role mappings give a user with the given IdP groups."""

    roles: frozenset[str]
    resource_ids: frozenset[int]
    group_ids: frozenset[int]
    matched_groups: tuple[str, ...] = field(default=())

    @property
    def scoped(self) -> bool:
        return bool(self.resource_ids or self.group_ids)


def grants_for_groups(groups: Iterable[str]) -> Grants:
    """Union of the roles of every matching mapping; scope is the union of the scoped ones.

    Scope belongs to the user, not to a role (inventory.selectors), so the safe reading is
    chosen: one scoped mapping limits the user even if another matching mapping has no scope.
    """
    wanted = {g for g in groups if g}
    if not wanted:
        return Grants(frozenset(), frozenset(), frozenset())
    mappings = RoleMapping.objects.filter(claim_value__in=wanted).prefetch_related(
        "resources", "resource_groups"
    )
    roles: set[str] = set()
    resource_ids: set[int] = set()
    group_ids: set[int] = set()
    matched: set[str] = set()
    for mapping in mappings:
        roles.add(mapping.role)
        matched.add(mapping.claim_value)
        resource_ids.update(r.pk for r in mapping.resources.all())
        group_ids.update(g.pk for g in mapping.resource_groups.all())
    return Grants(
        frozenset(roles), frozenset(resource_ids), frozenset(group_ids), tuple(sorted(matched))
    )


def scope_content_types() -> dict[type, ContentType]:
    return ContentType.objects.get_for_models(Resource, ResourceGroup)


def direct_scope(user: Any) -> tuple[set[int], set[int]]:
    """(resource ids, group ids) granted to the user itself (not through Django groups)."""
    cts = scope_content_types()
    rows = UserObjectPermission.objects.filter(
        user=user,
        content_type__in=cts.values(),
        permission__codename__in=SCOPE_CODENAMES.values(),
    ).values_list("content_type_id", "object_pk")
    resources: set[int] = set()
    groups: set[int] = set()
    for ct_id, pk in rows:
        (resources if ct_id == cts[Resource].id else groups).add(int(pk))
    return resources, groups


def identity_of(user: Any) -> Identity | None:
    if user is None or not getattr(user, "pk", None):
        return None
    try:
        return user.bc_identity
    except Identity.DoesNotExist:
        return None
