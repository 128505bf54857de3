"""What a request's scope (one resource or one group) means: members, the tier and environment
policy is resolved for, valid target sites, the readiness shown with each vote, and a fingerprint
that changes when the scope changes under an approval (members, their order or their sites).

Reads inventory only (the arrow points approvals -> inventory).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from approvals.choices import RequestKind
from inventory.choices import Environment
from inventory.models import Resource, ResourceGroup, ResourceStatus, Site
from inventory.status_services import current_evaluation

# Strictest first: a group mixing environments is treated as its strictest member.
_ENV_STRICTNESS = [
    Environment.PRODUCTION,
    Environment.STAGING,
    Environment.DEVELOPMENT,
    Environment.TEST,
]
# Observed roles (connector contract) that mean "this side accepts writes".
_PRIMARY_ROLE = "primary"


def members(*, resource: Resource | None, group: ResourceGroup | None) -> list[Resource]:
    """The resources a scope covers, in run order, with their status loaded."""
    if resource is not None:
        return list(
            Resource.objects.select_related("status", "primary_site", "dr_site").filter(
                pk=resource.pk
            )
        )
    if group is None:
        return []
    ordered = (
        group.memberships.select_related(
            "resource__status", "resource__primary_site", "resource__dr_site"
        )
        .order_by("position", "id")
        .all()
    )
    return [m.resource for m in ordered]


def profile(
    *, resource: Resource | None, group: ResourceGroup | None, scope_members: list[Resource]
) -> tuple[int, str]:
    """(tier, environment) used to resolve the policy: a group takes its strictest values."""
    if resource is not None:
        return resource.tier, resource.environment
    tiers = [m.tier for m in scope_members] + ([group.tier] if group is not None else [])
    envs = {m.environment for m in scope_members}
    environment = next((e for e in _ENV_STRICTNESS if e in envs), Environment.PRODUCTION)
    return min(tiers) if tiers else 1, str(environment)


def _status(resource: Resource) -> ResourceStatus | None:
    try:
        return resource.status
    except ResourceStatus.DoesNotExist:
        return None


def observed_primary_site_id(resource: Resource) -> int | None:
    """The site monitoring last saw as the one primary (None: nothing seen, or not one)."""
    status = _status(resource)
    if status is None:
        return None
    roles = (status.primary_role, status.dr_role)
    if roles.count(_PRIMARY_ROLE) != 1:
        return None
    return resource.primary_site_id if roles[0] == _PRIMARY_ROLE else resource.dr_site_id


def current_primary_site_id(resource: Resource) -> int:
    """The site that is primary now: where the last executions left it (the primary site until
    something moved it), or where monitoring sees the one primary if that differs."""
    observed = observed_primary_site_id(resource)
    return observed if observed is not None else resource.current_site_id_or_home


def _site_name(resource: Resource, site_id: int | None) -> str:
    for site in (resource.primary_site, resource.dr_site):
        if site.pk == site_id:
            return site.name
    return f"site #{site_id}"


def target_errors(kind: str, scope_members: list[Resource], target: Site) -> list[str]:
    """Why ``target`` is not a valid target for every member (empty list: it is).

    The primary moves: a switchover or failover to the site that holds the primary now is
    refused, whether the service recorded it there (a move left in place) or monitoring sees it
    there (a move outside the service); a failback goes to the home (primary) site and only
    when the resource is away from it by either account.
    """
    errors: list[str] = []
    if not scope_members:
        return ["The group has no members."]
    for member in scope_members:
        recorded = member.current_site_id_or_home
        observed = observed_primary_site_id(member)
        if target.pk not in (member.primary_site_id, member.dr_site_id):
            errors.append(f"{member.name}: {target.name} is neither its primary nor its DR site.")
        elif kind in (RequestKind.FAILOVER, RequestKind.SWITCHOVER):
            if target.pk == recorded:
                where = " (after a move left in place)" if member.away_from_home else ""
                errors.append(
                    f"{member.name}: {target.name} is already its primary: the current site"
                    f"{where}. A {kind} must go to the other site"
                    + ("; to return home, request a failback." if member.away_from_home else ".")
                )
            elif target.pk == observed:
                errors.append(
                    f"{member.name}: {target.name} is already its primary as monitoring sees it, "
                    f"although the recorded current site is {_site_name(member, recorded)}; "
                    "check the unexpected_primary_site reason first."
                )
        elif kind == RequestKind.FAILBACK:
            if target.pk != member.primary_site_id:
                # Failback returns to the home (configured primary) site; else it is a failover.
                errors.append(
                    f"{member.name}: failback goes to its home site {member.primary_site}."
                )
            elif recorded == member.primary_site_id and observed in (None, recorded):
                errors.append(
                    f"{member.name}: already at its home site {member.primary_site}; "
                    "there is nothing to fail back."
                )
    return errors


def readiness(scope_members: list[Resource]) -> list[dict[str, Any]]:
    """Readiness of each member as shown to an approver: state, visibility, lag, reason codes."""
    rows = []
    for member in scope_members:
        status = _status(member)
        if status is None:
            rows.append(
                {
                    "resource": member.pk,
                    "name": member.name,
                    "state": "red",
                    "visibility": "lost",
                    "lag_seconds": None,
                    "lag_bytes": None,
                    "reasons": ["never_observed"],
                    "observed_at": None,
                }
            )
            continue
        # As the status board shows it now: staleness, drill_overdue, unexpected_primary_site.
        shown = current_evaluation(member, status)
        rows.append(
            {
                "resource": member.pk,
                "name": member.name,
                "state": shown.state,
                "visibility": shown.visibility,
                "lag_seconds": status.lag_seconds,
                "lag_bytes": status.lag_bytes,
                "reasons": shown.codes,
                "observed_at": status.observed_at.isoformat() if status.observed_at else None,
            }
        )
    return rows


def fingerprint(
    *,
    kind: str,
    resource: Resource | None,
    group: ResourceGroup | None,
    target_site_id: int,
    scope_members: list[Resource],
) -> str:
    """A hash of what an approval approves: kind, scope, target, members (in order) and sites."""
    data = {
        "kind": str(kind),
        "resource": resource.pk if resource is not None else None,
        "group": group.pk if group is not None else None,
        "target_site": target_site_id,
        "members": [[m.pk, m.primary_site_id, m.dr_site_id] for m in scope_members],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
