"""Approve and deny: the one place votes are cast, always under the request's row lock.

The rules (requester never counts, one person one vote, required roles covered by distinct
people) are in ``approvals.evaluation`` and ``approvals.policies``; this module applies them to
the locked row, records the vote and its audit event, and moves the request when the vote
decides it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import evaluation, scope
from approvals.choices import Decision, RequestState
from approvals.evaluation import FORBIDDEN, Blocker
from approvals.exceptions import ApprovalRefused, VoteConflict
from approvals.models import Approval, ExecutionRequest
from approvals.services.requests import request_refresh
from approvals.services.transitions import lock, sync, transition
from audit import services as audit
from bcservice.auth import mfa_ok

COMMENT_MAX_LENGTH = 4000


def _raise(blocker: Blocker, state: str) -> None:
    if blocker.status == FORBIDDEN:
        raise ApprovalRefused(blocker.code, blocker.message)
    raise VoteConflict(state, blocker.code, blocker.message)


@transaction.atomic
def _vote(
    request: ExecutionRequest, *, actor: Any, decision: str, comment: str, now: datetime | None
) -> Approval:
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ValidationError({"comment": [f"At most {COMMENT_MAX_LENGTH} characters."]})
    if decision == Decision.DENY and not comment:
        raise ValidationError({"comment": ["Say why you deny the request."]})
    now = now or timezone.now()
    locked = lock(request)
    # Votes bind to the policy and scope as they are now: stale approvals are voided first.
    request_refresh(locked, actor="system", now=now)
    blocker = evaluation.vote_blocker(locked, actor, decision, now)
    if blocker is not None:
        _raise(blocker, locked.state)
    if decision == Decision.APPROVE and not locked.policy_fingerprint:
        raise VoteConflict(
            locked.state, "no_policy", "No approval policy applies to this request any more."
        )
    members = scope.members(resource=locked.resource, group=locked.group)
    approval = Approval(
        request=locked,
        approver=actor,
        decision=decision,
        comment=comment,
        roles=sorted(evaluation.approver_roles(actor)),
        readiness=scope.readiness(members),
        policy_fingerprint=locked.policy_fingerprint,
        scope_fingerprint=locked.scope_fingerprint,
        at=now,
    )
    approval._history_user = actor
    approval.save()
    audit.record(
        action="approval.approved" if decision == Decision.APPROVE else "approval.denied",
        actor=actor,
        obj=locked,
        after={
            "approval": approval.pk,
            "decision": decision,
            "comment": comment,
            "roles": approval.roles,
            "readiness": approval.readiness,
            "policy_fingerprint": approval.policy_fingerprint,
        },
    )
    name = actor.get_username()
    if decision == Decision.DENY:
        transition(
            locked, RequestState.REJECTED, actor=actor, reason=f"Denied by {name}: {comment}"
        )
        sync(request, locked)
        return approval
    cov = evaluation.coverage(locked)
    if cov.satisfied:
        # Approvals are valid for the policy's window counted from the earliest one in use.
        earliest = min(
            a.at for a in evaluation.live_votes(locked) if a.decision == Decision.APPROVE
        )
        minutes = int(locked.policy_snapshot.get("approval_validity_minutes") or 0)
        transition(
            locked,
            RequestState.APPROVED,
            actor=actor,
            reason=f"Approved by {', '.join(_approver_names(locked))}.",
            now=now,
            changes={"expires_at": earliest + timedelta(minutes=minutes)},
            audit_extra={"covered": cov.covered, "approvers": cov.approvers},
        )
    sync(request, locked)
    return approval


def _approver_names(request: ExecutionRequest) -> list[str]:
    return [
        a.approver.get_username()
        for a in evaluation.live_votes(request)
        if a.decision == Decision.APPROVE
    ]


def request_approve(
    request: ExecutionRequest,
    *,
    actor: Any,
    comment: str = "",
    now: datetime | None = None,
    login: Any = None,
) -> Approval:
    """Record ``actor``'s approval; the request becomes ``approved`` when the policy is met.

    ``login`` is the HTTP request the vote arrived on: where approvers must show MFA
    (``BC_APPROVER_REQUIRED_ACR``/``_AMR``), it says how this session logged in. Without it the
    user's last recorded IdP login is judged. Denials need no MFA: they can only stop a change.

    Raises ApprovalRefused (403: requester, no approver role, role not needed, MFA not shown) or
    VoteConflict (409: not pending, already voted).
    """
    ok, reason = mfa_ok(login if login is not None else actor)
    if not ok:
        raise ApprovalRefused("mfa_required", f"You cannot approve: {reason}.")
    return _vote(request, actor=actor, decision=Decision.APPROVE, comment=comment, now=now)


def request_deny(
    request: ExecutionRequest, *, actor: Any, comment: str, now: datetime | None = None
) -> Approval:
    """Record ``actor``'s denial (a comment is required); one denial rejects the request."""
    return _vote(request, actor=actor, decision=Decision.DENY, comment=comment, now=now)
