"""Inputs of the read-time readiness rules: the drill programme and the current site.

``rules.at_read_time`` adds ``drill_overdue`` (from the tier's cadence and the last passed drill)
and ``unexpected_primary_site`` (recorded current site vs the observed primary). This module turns
a resource (and its status row) into the plain inputs those pure rules take, and reads the cadence
settings (``BC_DRILL_CADENCE_DAYS``, ``BC_DRILL_GRACE_DAYS``; docs/monitoring.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from inventory import rules
from inventory.models import Resource

# Used when the settings do not name a tier (the documented defaults).
DEFAULT_DRILL_CADENCE_DAYS = {1: 90, 2: 180, 3: 365}


def drill_cadence_days(tier: int) -> int:
    """The drill cadence of ``tier`` in days."""
    configured = getattr(settings, "BC_DRILL_CADENCE_DAYS", None) or {}
    return int(configured.get(tier) or DEFAULT_DRILL_CADENCE_DAYS.get(tier, 365))


def drill_grace_days(tier: int) -> int:
    """How long a resource without a passed drill is not yet overdue (default: one cadence)."""
    grace = getattr(settings, "BC_DRILL_GRACE_DAYS", None)
    return drill_cadence_days(tier) if grace is None else int(grace)


def drill_input(
    tier: int, last_passed_at: datetime | None, created_at: datetime | None
) -> rules.DrillInput:
    return rules.DrillInput(
        tier=tier,
        cadence_days=drill_cadence_days(tier),
        last_passed_at=last_passed_at,
        created_at=created_at,
        grace_days=drill_grace_days(tier),
    )


def drill_due_at(resource: Resource) -> datetime | None:
    """When the next drill is due: last passed drill (or creation, after the grace) + cadence."""
    if resource.last_passed_drill_at is not None:
        return resource.last_passed_drill_at + timedelta(days=drill_cadence_days(resource.tier))
    if resource.created_at is not None:
        return resource.created_at + timedelta(days=drill_grace_days(resource.tier))
    return None


def _name(site: Any) -> str:
    return site.name if site is not None else ""


def site_input(resource: Resource, status: Any) -> rules.SiteInput:
    """Recorded vs observed primary site (``status``: the ResourceStatus row or None).

    Site names come from the resource's relations; select them with the resource (the API,
    admin and board querysets do) to avoid a query per row.
    """
    primary = _name(resource.primary_site)
    current = _name(resource.current_site) if resource.current_site_id else primary
    return rules.SiteInput(
        primary_site=primary,
        dr_site=_name(resource.dr_site),
        current_site=current,
        primary_role=getattr(status, "primary_role", "") or "",
        dr_role=getattr(status, "dr_role", "") or "",
        observed_at=getattr(status, "observed_at", None),
        current_since=resource.current_site_changed_at,
    )


def site_input_by_id(
    *,
    primary_site_id: int,
    dr_site_id: int,
    current_site_id: int | None,
    primary_role: str | None,
    dr_role: str | None,
    observed_at: datetime | None,
    current_since: datetime | None,
) -> rules.SiteInput:
    """The same input from plain column values (counts only; the messages show ids)."""
    return rules.SiteInput(
        primary_site=str(primary_site_id),
        dr_site=str(dr_site_id),
        current_site=str(current_site_id or primary_site_id),
        primary_role=primary_role or "",
        dr_role=dr_role or "",
        observed_at=observed_at,
        current_since=current_since,
    )
