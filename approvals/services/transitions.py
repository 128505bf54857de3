"""The one function that changes a request's state, and the row lock every write starts with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.choices import TRANSITIONS, RequestState
from approvals.models import ExecutionRequest
from audit import services as audit
from bcservice.api.exceptions import IllegalTransition
from notifications.services import notify

# Timestamps the transition keeps on the row, by target state.
_STAMPS = {
    RequestState.APPROVED: "approved_at",
    RequestState.RUNNING: "started_at",
    RequestState.SUCCEEDED: "finished_at",
    RequestState.FAILED: "finished_at",
}


def lock(request: ExecutionRequest | int) -> ExecutionRequest:
    """Re-read the request with a row lock (must run inside a transaction)."""
    pk = request if isinstance(request, int) else request.pk
    return (
        ExecutionRequest.objects.select_for_update(of=("self",))
        .select_related("resource", "group", "target_site", "requested_by")
        .get(pk=pk)
    )


def is_user(actor: Any) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False)


def notify_request(request: ExecutionRequest, kind: str, subject: str, **extra: Any) -> None:
    """Queue a notification about ``request`` for after the commit (never for a rollback)."""
    snap = request.policy_snapshot or {}
    payload = {
        "request": request.pk,
        "kind": request.kind,
        "scope": request.scope_name,
        "target_site": request.target_site_name,
        "state": request.state,
        **extra,
    }
    tier, environment = snap.get("scope_tier"), snap.get("scope_environment")
    resource_id = request.resource_id
    transaction.on_commit(
        lambda: notify(
            kind,
            subject=subject,
            tier=tier,
            environment=environment,
            payload=payload,
            resource_id=resource_id,
        )
    )


@transaction.atomic
def transition(
    request: ExecutionRequest,
    to_state: str,
    *,
    actor: Any,
    reason: str,
    now: datetime | None = None,
    changes: dict[str, Any] | None = None,
    audit_extra: dict[str, Any] | None = None,
) -> ExecutionRequest:
    """Move ``request`` to ``to_state`` or raise IllegalTransition (HTTP 409, current state).

    Legality is judged against the row as locked now, not the caller's copy, so two racing
    callers cannot both move the same request. ``changes`` are other fields to set in the same
    save. The audit event is written in this transaction; the notification after commit.
    """
    locked = lock(request)
    current = locked.state
    if to_state not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(current, f"A {current} request cannot become {to_state}.")
    now = now or timezone.now()
    locked.state = to_state
    locked.state_reason = (reason or "")[:500]
    locked.state_changed_at = now
    if to_state in _STAMPS:
        setattr(locked, _STAMPS[to_state], now)
    for name, value in (changes or {}).items():
        setattr(locked, name, value)
    if is_user(actor):
        locked._history_user = actor
    locked.save()
    audit.record(
        action=f"request.{to_state}",
        actor=actor,
        obj=locked,
        before={"state": current},
        after={"state": to_state, "reason": reason, **(audit_extra or {})},
    )
    notify_request(locked, f"request.{to_state}", f"Request #{locked.pk} {to_state}: {reason}")
    sync(request, locked)
    return locked


def sync(request: ExecutionRequest, locked: ExecutionRequest) -> ExecutionRequest:
    """Copy the row as written onto the caller's instance, so it can keep using it."""
    if request is not locked:
        for field in locked._meta.concrete_fields:
            setattr(request, field.attname, getattr(locked, field.attname))
    return request
