"""The rules that decide whether a person may vote and whether a request may start, as reads.

Services call these under the request's row lock and act on the answer; selectors call the same
functions to show ``can_approve``/``why_not`` and the start blockers, so the UI and the
enforcement cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals import policies, scope
from approvals.choices import (
    AWAITING_START,
    PRIMARY_MOVING_KINDS,
    Decision,
    RequestState,
)
from approvals.models import Approval, BreakGlassGrant, ExecutionRequest
from approvals.policies import Coverage, Vote
from bcservice.roles import APPROVER_ROLES, user_roles
from inventory.models import Resource

FORBIDDEN = "forbidden"  # HTTP 403: the person may not
CONFLICT = "conflict"  # HTTP 409: the request's state does not allow it


@dataclass(frozen=True)
class Blocker:
    code: str
    message: str
    status: str = CONFLICT


@dataclass
class Binding:
    """What the request would be bound to if it were created now."""

    members: list[Resource]
    scope_fingerprint: str
    policy_snapshot: dict[str, Any] | None
    policy_fingerprint: str | None


def approver_roles(user: Any) -> frozenset[str]:
    return user_roles(user) & frozenset(APPROVER_ROLES)


def policy_binding(
    *, kind: str, resource: Any, group: Any, target_site_id: int, members: list[Resource]
) -> tuple[dict[str, Any] | None, str | None, str]:
    """(policy snapshot or None, its fingerprint, scope fingerprint) for a would-be request."""
    tier, environment = scope.profile(resource=resource, group=group, scope_members=members)
    policy = policies.resolve(tier=tier, kind=kind, environment=environment)
    scope_fp = scope.fingerprint(
        kind=kind,
        resource=resource,
        group=group,
        target_site_id=target_site_id,
        scope_members=members,
    )
    if policy is None:
        return None, None, scope_fp
    snap = policies.snapshot(policy)
    snap.update(scope_tier=tier, scope_environment=environment)
    return snap, policies.fingerprint(snap), scope_fp


def current_binding(request: ExecutionRequest) -> Binding:
    members = scope.members(resource=request.resource, group=request.group)
    snap, policy_fp, scope_fp = policy_binding(
        kind=request.kind,
        resource=request.resource,
        group=request.group,
        target_site_id=request.target_site_id,
        members=members,
    )
    return Binding(members, scope_fp, snap, policy_fp)


def drift(request: ExecutionRequest, binding: Binding) -> Blocker | None:
    """Why the request's approvals no longer bind (policy or scope changed), or None."""
    if binding.policy_snapshot is None:
        return Blocker("no_policy", "No approval policy applies to this request any more.")
    if binding.policy_fingerprint != request.policy_fingerprint:
        return Blocker(
            "policy_changed",
            "The approval policy that applies changed since the request was approved; "
            "its approvals are void and it needs fresh ones.",
        )
    if binding.scope_fingerprint != request.scope_fingerprint:
        return Blocker(
            "scope_changed",
            "The scope changed (group members or their sites) since the request was approved; "
            "its approvals are void and it needs fresh ones.",
        )
    return None


def live_votes(request: ExecutionRequest) -> list[Approval]:
    """Votes that still bind: not voided and given under the request's current fingerprints."""
    cached = getattr(request, "_prefetched_objects_cache", {}).get("approvals")
    rows = list(cached) if cached is not None else list(request.approvals.all())
    return [
        a
        for a in rows
        if a.voided_at is None
        and a.policy_fingerprint == request.policy_fingerprint
        and a.scope_fingerprint == request.scope_fingerprint
        # Defence in depth: the vote service refuses the requester, and it never counts anyway.
        and a.approver_id != request.requested_by_id
    ]


def counted_votes(request: ExecutionRequest) -> list[Vote]:
    return [
        Vote(a.approver_id, frozenset(a.roles))
        for a in live_votes(request)
        if a.decision == Decision.APPROVE
    ]


def coverage(request: ExecutionRequest) -> Coverage:
    return policies.evaluate(request.policy_snapshot, counted_votes(request))


def vote_blocker(
    request: ExecutionRequest, user: Any, decision: str, now: datetime | None = None
) -> Blocker | None:
    """Why ``user`` may not cast ``decision`` on ``request`` now, or None when they may."""
    roles = approver_roles(user)
    if not roles:
        return Blocker(
            "not_approver",
            f"Only {' or '.join(APPROVER_ROLES)} may approve or deny requests.",
            FORBIDDEN,
        )
    if user.pk == request.requested_by_id:
        # About the person, not the token or role they use: compared by user id.
        return Blocker(
            "requester", "The requester cannot approve or deny their own request.", FORBIDDEN
        )
    allowed = (
        {RequestState.PENDING_APPROVAL}
        if decision == Decision.APPROVE
        else {RequestState.PENDING_APPROVAL, RequestState.APPROVED}
    )
    if request.state not in allowed:
        return Blocker("state", f"The request is {request.state}; votes are closed.")
    if request.expires_at is not None and request.expires_at <= (now or timezone.now()):
        # Overdue but not yet swept: a vote must not revive it.
        return Blocker("expired", "The request has expired; votes are closed.")
    if any(a.approver_id == user.pk for a in live_votes(request)):
        return Blocker("already_voted", "You have already voted on this request.")
    if decision == Decision.APPROVE:
        votes = counted_votes(request)
        if not policies.vote_would_help(request.policy_snapshot, votes, Vote(user.pk, roles)):
            cov = policies.evaluate(request.policy_snapshot, votes)
            still = ", ".join(cov.missing_roles) or "another approver"
            return Blocker(
                "not_needed",
                f"Your role ({', '.join(sorted(roles))}) is already covered; "
                f"still needed: {still}.",
                FORBIDDEN,
            )
    return None


def last_primary_move(request: ExecutionRequest, members: list[Resource]) -> datetime | None:
    """When the primary of any member last moved (a started failover/switchover/failback)."""
    ids = [m.pk for m in members]
    row = (
        ExecutionRequest.objects.filter(
            Q(resource_id__in=ids) | Q(group__memberships__resource_id__in=ids),
            kind__in=PRIMARY_MOVING_KINDS,
            started_at__isnull=False,
        )
        .exclude(pk=request.pk)
        .annotate(moved_at=Coalesce(F("finished_at"), F("started_at")))
        .order_by("-moved_at")
        .values_list("moved_at", flat=True)
        .first()
    )
    return row


def flap_status(
    request: ExecutionRequest, members: list[Resource], now: datetime
) -> dict[str, Any]:
    window = int(request.policy_snapshot.get("flap_window_minutes") or 0)
    last = (
        last_primary_move(request, members)
        if window and request.kind in PRIMARY_MOVING_KINDS
        else None
    )
    until = last + timedelta(minutes=window) if last else None
    within = until is not None and now < until
    return {
        "window_seconds": window * 60,
        "last_move_at": last,
        "window_ends_at": until,
        "acknowledged": request.flap_acknowledged_at is not None,
        "blocked": within and request.flap_acknowledged_at is None,
    }


def grant_covers(
    grant: BreakGlassGrant, members: list[Resource], request: ExecutionRequest
) -> bool:
    if grant.group_id is not None and grant.group_id == request.group_id:
        return True
    covered = (
        {grant.resource_id}
        if grant.resource_id
        else set(grant.group.memberships.values_list("resource_id", flat=True))
    )
    return bool(members) and all(m.pk in covered for m in members)


def covering_grant(
    request: ExecutionRequest, actor: Any, members: list[Resource], now: datetime
) -> BreakGlassGrant | None:
    """An active break-glass grant of ``actor`` that covers every resource of the request."""
    if actor is None or not getattr(actor, "pk", None):
        return None
    grants = BreakGlassGrant.objects.filter(
        grantee_id=actor.pk, starts_at__lte=now, ends_at__gt=now
    ).select_related("group")
    return next((g for g in grants if grant_covers(g, members, request)), None)


def start_blocker(
    request: ExecutionRequest, actor: Any, now: datetime, binding: Binding | None = None
) -> tuple[Blocker | None, BreakGlassGrant | None]:
    """(why the request may not start, None) or (None, the break-glass grant used if any)."""
    if request.state not in AWAITING_START:
        return Blocker("state", f"The request is {request.state}; it cannot start."), None
    if request.expires_at is not None and request.expires_at <= now:
        return Blocker("expired", "The request has expired; create a new one."), None
    binding = binding or current_binding(request)
    errors = scope.target_errors(request.kind, binding.members, request.target_site)
    if errors:
        return Blocker("target_invalid", " ".join(errors)), None
    if flap_status(request, binding.members, now)["blocked"]:
        return Blocker(
            "flapping",
            "The primary moved within the policy's anti-flapping window; "
            "an admin must acknowledge before this request can start.",
        ), None
    grant = covering_grant(request, actor, binding.members, now)
    if grant is not None:
        return None, grant  # the grant waives approvals (and therefore their binding)
    changed = drift(request, binding)
    if changed is not None:
        return changed, None
    cov = coverage(request)
    if request.state != RequestState.APPROVED or not cov.satisfied:
        missing = ", ".join(cov.missing_roles)
        detail = f" (missing roles: {missing})" if missing else ""
        return Blocker(
            "not_approved",
            f"The request is not approved: {cov.still_needed} more approver(s) needed{detail}.",
        ), None
    return None, None
