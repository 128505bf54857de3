"""Writes to the inventory. Every create, update and delete records its audit event with
before/after in the same transaction; the admin and the API both come through here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models, transaction

from audit import services as audit
from audit.snapshot import diff, snapshot
from inventory.models import GroupMembership, Resource, ResourceGroup, Site


def _label(instance: models.Model) -> str:
    return instance._meta.model_name


@transaction.atomic
def save_object(*, actor: Any, instance: models.Model) -> models.Model:
    """Validate, save and audit one inventory object (create when it has no pk yet)."""
    creating = instance.pk is None
    before = None
    if not creating:
        previous = type(instance).objects.select_for_update().filter(pk=instance.pk).first()
        before = snapshot(previous)
        creating = previous is None
    instance.full_clean()
    if not creating and not diff(before, snapshot(instance)):
        return instance  # nothing changed: no save, no history row, no audit event
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor
    instance.save()
    after = snapshot(instance)
    audit.record(
        action=f"{_label(instance)}.{'created' if creating else 'updated'}",
        actor=actor,
        obj=instance,
        before=before,
        after=after,
    )
    return instance


@transaction.atomic
def delete_object(*, actor: Any, instance: models.Model) -> None:
    before = snapshot(instance)
    pk, name = instance.pk, str(instance)
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor
    instance.delete()
    audit.record(
        action=f"{_label(instance)}.deleted",
        actor=actor,
        object_type=instance._meta.label_lower,
        object_id=pk,
        object_name=name,
        before=before,
    )


def create_or_update(
    *, actor: Any, model: type[models.Model], instance: models.Model | None, data: Mapping
) -> models.Model:
    """Apply validated values to an instance (or a new one) and save it via save_object."""
    instance = instance or model()
    for field, value in data.items():
        setattr(instance, field, value)
    return save_object(actor=actor, instance=instance)


@transaction.atomic
def group_set_members(*, actor: Any, group: ResourceGroup, resources: Iterable[Resource]) -> None:
    """Replace a group's members with ``resources`` in that order (position 0 runs first)."""
    resources = list(resources)
    before = list(group.memberships.order_by("position").values_list("resource__name", flat=True))
    after = [r.name for r in resources]
    if before == after:
        return
    group.memberships.all().delete()
    GroupMembership.objects.bulk_create(
        GroupMembership(group=group, resource=r, position=i) for i, r in enumerate(resources)
    )
    audit.record(
        action="resourcegroup.members_changed",
        actor=actor,
        obj=group,
        before={"members": before},
        after={"members": after},
    )


def site_save(*, actor: Any, site: Site) -> Site:
    return save_object(actor=actor, instance=site)


def resource_save(*, actor: Any, resource: Resource) -> Resource:
    return save_object(actor=actor, instance=resource)
