"""Writes to the inventory. Every create, update and delete records its audit event with
before/after in the same transaction; the admin and the API both come through here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
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
        if previous is not None:
            # What executions recorded (current site, last passed drill) is not configuration:
            # an instance read before an execution finished must not write the old values back.
            for name in getattr(type(instance), "EXECUTION_OWNED_FIELDS", ()):
                field = instance._meta.get_field(name)
                setattr(instance, field.attname, getattr(previous, field.attname))
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


# --- what executions record ---------------------------------------------------------------------


def _locked_resource(resource_id: int) -> Resource:
    return (
        Resource.objects.select_for_update(of=("self",))
        .select_related("primary_site", "dr_site", "current_site")
        .get(pk=resource_id)
    )


def _site_name(site: Site | None) -> str | None:
    return site.name if site is not None else None


@transaction.atomic
def resource_record_move(
    *,
    actor: Any,
    resource_id: int,
    site: Site,
    kind: str,
    at: datetime,
    execution_id: int | None = None,
) -> Resource:
    """Record that ``site`` holds the primary role of the resource now (a succeeded switchover,
    failover or failback); audited as ``resource.current_site_changed``.

    Called by the executions app in the transaction that finishes the execution. A ``site`` that
    is no longer the resource's primary or DR site (its sites were edited while it ran) is not
    recorded: the refusal is audited (``resource.current_site_not_recorded``) and monitoring's
    ``unexpected_primary_site`` shows where the primary really is. It never raises for that, so
    an execution can always finish.
    """
    resource = _locked_resource(resource_id)
    if site.pk not in (resource.primary_site_id, resource.dr_site_id):
        audit.record(
            action="resource.current_site_not_recorded",
            actor=actor,
            obj=resource,
            after={
                "site": site.name,
                "kind": kind,
                "execution": execution_id,
                "why": "the site is neither the primary nor the DR site of the resource now",
            },
        )
        return resource
    before = {
        "current_site": _site_name(resource.current_site or resource.primary_site),
        "away_from_home": resource.away_from_home,
        "current_site_changed_at": resource.current_site_changed_at,
    }
    resource.current_site = site
    resource.current_site_changed_at = at
    _save_recorded(actor, resource, ["current_site", "current_site_changed_at"])
    audit.record(
        action="resource.current_site_changed",
        actor=actor,
        obj=resource,
        before=before,
        after={
            "current_site": site.name,
            "away_from_home": resource.away_from_home,
            "current_site_changed_at": at,
            "kind": kind,
            "execution": execution_id,
        },
    )
    return resource


@transaction.atomic
def resource_record_drill(
    *,
    actor: Any,
    resource_id: int,
    at: datetime,
    execution_id: int | None = None,
    conclusion: str = "",
) -> Resource:
    """Record a passed drill of the resource (``last_passed_drill_at``); audited as
    ``resource.drill_passed``. Called by the executions app when a drill finishes."""
    resource = _locked_resource(resource_id)
    before = {"last_passed_drill_at": resource.last_passed_drill_at}
    resource.last_passed_drill_at = at
    _save_recorded(actor, resource, ["last_passed_drill_at"])
    audit.record(
        action="resource.drill_passed",
        actor=actor,
        obj=resource,
        before=before,
        after={"last_passed_drill_at": at, "execution": execution_id, "conclusion": conclusion},
    )
    return resource


def _save_recorded(actor: Any, resource: Resource, fields: list[str]) -> None:
    if actor is not None and getattr(actor, "is_authenticated", False):
        resource._history_user = actor
    resource._change_reason = "recorded by an execution"
    resource.save(update_fields=[*fields, "updated_at"])
