"""Choice sets of the approvals app and the request state machine's table of legal moves.

The table is data so that the transition service, the tests and the docs read the same thing.
"""

from __future__ import annotations

from django.db import models


class RequestKind(models.TextChoices):
    FAILOVER = "failover", "Failover"
    SWITCHOVER = "switchover", "Switchover"
    FAILBACK = "failback", "Failback"
    DRILL = "drill", "DR drill"


# Kinds that move the primary: they are subject to the anti-flapping window.
PRIMARY_MOVING_KINDS = frozenset(
    {RequestKind.FAILOVER, RequestKind.SWITCHOVER, RequestKind.FAILBACK}
)


class RequestState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


S = RequestState
ACTIVE = frozenset({S.PENDING_APPROVAL, S.APPROVED, S.RUNNING})
TERMINAL = frozenset({S.REJECTED, S.EXPIRED, S.CANCELLED, S.SUCCEEDED, S.FAILED})
# States in which votes, expiry and policy refresh still matter (before anything ran).
AWAITING_START = frozenset({S.PENDING_APPROVAL, S.APPROVED})

# from-state -> the states it may move to. Terminal states have no way out: a failed request is
# never reused, a retry is a new request with fresh approvals (detailed-design.md §3).
TRANSITIONS: dict[str, frozenset[str]] = {
    # running straight from pending only under a break-glass grant (checked by the start check).
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED, S.RUNNING}),
    # back to pending when approvals are voided (policy or scope changed); a late denial rejects.
    S.APPROVED: frozenset({S.PENDING_APPROVAL, S.RUNNING, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED}),
    **{state: frozenset() for state in TERMINAL},
}


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    DENY = "deny", "Deny"
