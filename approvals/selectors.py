"""Reads of the approvals app, filtered by what the user may see (inventory.selectors scope).

A request or grant is visible when its resource is among ``resources_for(user)`` or its group
among ``groups_for(user)``; the API, the admin and the React app all come through here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from approvals import evaluation, policies, scope
from approvals.choices import Decision, RequestState
from approvals.models import Approval, ApprovalPolicy, BreakGlassGrant, ExecutionRequest
from bcservice.auth import mfa_ok
from bcservice.roles import GLOBAL_READ_ROLES, has_role, user_roles
from inventory.models import Resource, ResourceGroup
from inventory.selectors import groups_for, resources_for


def _scoped(qs: QuerySet, user: Any) -> QuerySet:
    if not user_roles(user):
        return qs.none()
    if has_role(user, *GLOBAL_READ_ROLES):
        return qs
    return qs.filter(
        Q(resource__in=resources_for(user).values("pk"))
        | Q(group__in=groups_for(user).values("pk"))
    )


def requests_for(user: Any) -> QuerySet[ExecutionRequest]:
    qs = ExecutionRequest.objects.select_related(
        "resource", "group", "target_site", "requested_by", "flap_acknowledged_by"
    ).prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.select_related("approver").order_by("at"))
    )
    return _scoped(qs, user)


def request_visible(user: Any, request: ExecutionRequest) -> bool:
    return requests_for(user).filter(pk=request.pk).exists()


def grants_for(user: Any) -> QuerySet[BreakGlassGrant]:
    qs = BreakGlassGrant.objects.select_related(
        "grantee", "opened_by", "resource", "group", "reviewed_by", "closed_by"
    )
    return _scoped(qs, user)


def grants_needing_review(
    qs: QuerySet[BreakGlassGrant], now: datetime | None = None
) -> QuerySet[BreakGlassGrant]:
    """Ended grants nobody has signed off yet."""
    return qs.filter(reviewed_at__isnull=True, ends_at__lte=now or timezone.now())


def policies_all() -> QuerySet[ApprovalPolicy]:
    return ApprovalPolicy.objects.all()


def waiting_for(user: Any, qs: QuerySet[ExecutionRequest] | None = None) -> list[ExecutionRequest]:
    """Pending requests ``user`` could usefully approve: not their own, not already voted on,
    and only where one of their roles still brings the request closer to approval."""
    roles = evaluation.approver_roles(user)
    if not roles:
        return []
    qs = requests_for(user) if qs is None else qs
    voted = Approval.objects.filter(approver_id=user.pk, voided_at__isnull=True)
    candidates = (
        qs.filter(state=RequestState.PENDING_APPROVAL)
        .exclude(requested_by_id=user.pk)
        .exclude(pk__in=voted.values("request_id"))
    )
    # vote_blocker says "not_needed" when none of the user's roles would bring it closer.
    return [r for r in candidates if evaluation.vote_blocker(r, user, Decision.APPROVE) is None]


def approvals_required(request: ExecutionRequest) -> dict[str, Any]:
    """``approvals_required`` of the API: how many people, which roles, what is still missing."""
    cov = evaluation.coverage(request)
    return {
        "count": cov.min_approvers,
        "roles": cov.required_roles,
        "received": cov.approvers,
        "covered": {role: _username(request, uid) for role, uid in cov.covered.items()},
        "missing_roles": cov.missing_roles,
        "still_needed": cov.still_needed,
        "satisfied": cov.satisfied,
    }


def _username(request: ExecutionRequest, user_id: int) -> str:
    for approval in request.approvals.all():
        if approval.approver_id == user_id:
            return approval.approver.get_username()
    return str(user_id)


def approval_rows(request: ExecutionRequest) -> list[dict[str, Any]]:
    """Every vote, voided ones included (marked), with the role it counted as."""
    live = {a.pk for a in evaluation.live_votes(request)}
    counted_role = evaluation.coverage(request).counted_role
    rows = []
    for a in request.approvals.all():
        valid = a.pk in live
        rows.append(
            {
                "id": a.pk,
                "approver": a.approver.get_username(),
                "approver_id": a.approver_id,
                "decision": a.decision,
                "roles": a.roles,
                "role_counted": counted_role.get(a.approver_id)
                if valid and a.decision == Decision.APPROVE
                else None,
                "comment": a.comment,
                "at": a.at,
                "readiness": a.readiness,
                "policy_fingerprint": a.policy_fingerprint,
                "valid": valid,
                "voided_at": a.voided_at,
                "void_reason": a.void_reason
                or ("" if valid else "Given under a different policy or scope."),
            }
        )
    return rows


def user_actions(
    request: ExecutionRequest, user: Any, now: datetime | None = None, login: Any = None
) -> dict:
    """What the current user may do, and why not: the UI shows disabled buttons with reasons.

    ``login`` (the HTTP request) lets the MFA requirement for approvers be judged on this
    session, as ``request_approve`` will judge it."""
    now = now or timezone.now()
    approve = evaluation.vote_blocker(request, user, Decision.APPROVE, now)
    if approve is None:
        mfa_shown, reason = mfa_ok(login if login is not None else user)
        if not mfa_shown:
            approve = evaluation.Blocker(
                "mfa_required", f"You cannot approve: {reason}.", evaluation.FORBIDDEN
            )
    deny = evaluation.vote_blocker(request, user, Decision.DENY, now)
    start, _grant = evaluation.start_blocker(request, user, now)
    may_cancel = user.pk == request.requested_by_id or has_role(user, "admin")
    cancellable = request.state in (RequestState.PENDING_APPROVAL, RequestState.APPROVED)
    return {
        "can_approve": approve is None,
        "why_not": approve.message if approve else "",
        "can_deny": deny is None,
        "why_not_deny": deny.message if deny else "",
        "can_cancel": may_cancel and cancellable,
        "can_start": start is None,
        "why_not_start": start.message if start else "",
        "start_blocker": start.code if start else "",
    }


def flapping(request: ExecutionRequest, now: datetime | None = None) -> dict[str, Any]:
    members = scope.members(resource=request.resource, group=request.group)
    return evaluation.flap_status(request, members, now or timezone.now())


def policy_preview(
    *, kind: str, resource: Resource | None, group: ResourceGroup | None
) -> dict[str, Any]:
    """The policy a request would be bound to if created now (``policy`` None: none applies)."""
    members = scope.members(resource=resource, group=group)
    tier, environment = scope.profile(resource=resource, group=group, scope_members=members)
    policy = policies.resolve(tier=tier, kind=kind, environment=environment)
    return {
        "resolved_for": {"tier": tier, "environment": environment, "kind": kind},
        "policy": policies.describe(policies.snapshot(policy)) if policy else None,
    }
