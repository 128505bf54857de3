"""What the executions app calls: may this request start, it started, it finished.

Invariant 1 lives here: nothing changes a target without an approved request (approvals still
binding to the current policy and scope, not expired) or an active break-glass grant of the
person starting it that covers the whole scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import evaluation
from approvals.choices import RequestState
from approvals.exceptions import RequestNotStartable
from approvals.models import BreakGlassGrant, ExecutionRequest
from approvals.services.transitions import is_user, lock, sync, transition


def start_basis(
    request: ExecutionRequest, *, actor: Any, now: datetime | None = None
) -> BreakGlassGrant | None:
    """Like ``request_check_startable``, returning the break-glass grant that allows the start
    when approvals do not (None when the approvals do)."""
    now = now or timezone.now()
    blocker, grant = evaluation.start_blocker(request, actor, now)
    if blocker is not None:
        raise RequestNotStartable(request.state, blocker.code, blocker.message)
    return grant


def request_check_startable(
    request: ExecutionRequest, *, actor: Any, now: datetime | None = None
) -> None:
    """Raise RequestNotStartable (HTTP 409, with ``code`` and a clear message) unless
    ``request`` may start now. Reads only; ``request_mark_running`` repeats the check under
    the row lock before moving the request."""
    start_basis(request, actor=actor, now=now)


@transaction.atomic
def request_mark_running(
    request: ExecutionRequest, *, actor: Any, now: datetime | None = None
) -> ExecutionRequest:
    """Check and move the request to ``running`` in one transaction under its row lock.

    Call it in the same transaction that creates the Execution, so that both or neither exist.
    """
    now = now or timezone.now()
    locked = lock(request)
    grant = start_basis(locked, actor=actor, now=now)
    basis = "breakglass" if grant is not None else "approvals"
    transition(
        locked,
        RequestState.RUNNING,
        actor=actor,
        reason=f"Started by {actor.get_username() if is_user(actor) else actor} on {basis}.",
        now=now,
        changes={"breakglass_grant": grant},
        audit_extra={"basis": basis, "breakglass_grant": grant.pk if grant else None},
    )
    return sync(request, locked)


@transaction.atomic
def request_mark_finished(
    request: ExecutionRequest,
    *,
    actor: Any,
    succeeded: bool,
    detail: str = "",
    now: datetime | None = None,
) -> ExecutionRequest:
    """Move a running request to ``succeeded`` or ``failed`` (terminal: never reused)."""
    to_state = RequestState.SUCCEEDED if succeeded else RequestState.FAILED
    locked = lock(request)
    transition(locked, to_state, actor=actor, reason=detail or f"Execution {to_state}.", now=now)
    return sync(request, locked)
