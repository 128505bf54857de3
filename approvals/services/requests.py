"""Creating, cancelling, refreshing and expiring execution requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import evaluation, scope
from approvals.choices import AWAITING_START, RequestKind, RequestState
from approvals.exceptions import ApprovalRefused
from approvals.models import ExecutionRequest
from approvals.models.request import TICKET_MAX_LENGTH
from approvals.policies import ticket_errors
from approvals.services.transitions import is_user, lock, notify_request, sync, transition
from audit import services as audit
from audit.snapshot import snapshot
from bcservice.api.exceptions import IllegalTransition
from bcservice.roles import ADMIN, OPERATOR, has_role
from inventory.models import Resource, ResourceGroup, Site

REASON_MAX_LENGTH = 4000


def _validity(policy_snapshot: dict[str, Any]) -> timedelta:
    return timedelta(minutes=int(policy_snapshot.get("approval_validity_minutes") or 0))


@transaction.atomic
def request_create(
    *,
    actor: Any,
    kind: str,
    target_site: Site,
    reason: str,
    resource: Resource | None = None,
    group: ResourceGroup | None = None,
    change_ticket: str = "",
    now: datetime | None = None,
) -> ExecutionRequest:
    """Create a request in ``pending_approval`` bound to the policy that applies now.

    Raises ValidationError (HTTP 400, field errors) for bad input and ApprovalRefused (403) when
    the actor is not an operator. Visibility of the scope is the caller's job (the API resolves
    ids through inventory.selectors so out-of-scope objects look unknown).
    """
    if not has_role(actor, OPERATOR):
        raise ApprovalRefused("not_operator", "Only operators may create requests.")
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    if kind not in RequestKind.values:
        errors["kind"] = [f"Choose one of {', '.join(RequestKind.values)}."]
    if (resource is None) == (group is None):
        errors["non_field_errors"] = ["Give exactly one of resource or group."]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["A reason is required."]
    elif len(reason) > REASON_MAX_LENGTH:
        errors["reason"] = [f"At most {REASON_MAX_LENGTH} characters."]
    change_ticket = (change_ticket or "").strip()
    if len(change_ticket) > TICKET_MAX_LENGTH:
        errors["change_ticket"] = [f"At most {TICKET_MAX_LENGTH} characters."]
    if errors:
        raise ValidationError(errors)

    members = scope.members(resource=resource, group=group)
    if not members:
        raise ValidationError({"group": ["The group has no members."]})
    target_problems = scope.target_errors(kind, members, target_site)
    if target_problems:
        errors["target_site"] = target_problems
    snap, policy_fp, scope_fp = evaluation.policy_binding(
        kind=kind, resource=resource, group=group, target_site_id=target_site.pk, members=members
    )
    if snap is None:
        errors.setdefault("non_field_errors", []).append(
            "No approval policy applies to this tier, kind and environment; ask an admin."
        )
    elif "change_ticket" not in errors:
        problems = ticket_errors(snap, change_ticket)
        if problems:
            errors["change_ticket"] = problems
    if errors:
        raise ValidationError(errors)

    request = ExecutionRequest(
        kind=kind,
        resource=resource,
        group=group,
        target_site=target_site,
        reason=reason,
        change_ticket=change_ticket,
        requested_by=actor,
        policy_id=snap["id"],
        policy_snapshot=snap,
        policy_fingerprint=policy_fp,
        scope_fingerprint=scope_fp,
        expires_at=now + _validity(snap),
        state_changed_at=now,
    )
    request._history_user = actor
    request.save()
    audit.record(action="request.created", actor=actor, obj=request, after=snapshot(request))
    notify_request(
        request,
        "request.created",
        f"Request #{request.pk}: {kind} of {request.scope_name} to {target_site.name} "
        f"waits for approval",
        requested_by=actor.get_username(),
    )
    return request


@transaction.atomic
def request_cancel(
    request: ExecutionRequest, *, actor: Any, reason: str = "", now: datetime | None = None
) -> ExecutionRequest:
    """Cancel a request that has not started: only its requester or an admin may."""
    locked = lock(request)
    if actor.pk != locked.requested_by_id and not has_role(actor, ADMIN):
        raise ApprovalRefused("not_requester", "Only the requester or an admin may cancel.")
    text = (reason or "").strip()[:500] or f"Cancelled by {actor.get_username()}."
    transition(locked, RequestState.CANCELLED, actor=actor, reason=text, now=now)
    return sync(request, locked)


@transaction.atomic
def request_acknowledge_flapping(
    request: ExecutionRequest, *, actor: Any, comment: str, now: datetime | None = None
) -> ExecutionRequest:
    """An admin (not the requester) lets the request start inside the anti-flapping window."""
    if not has_role(actor, ADMIN):
        raise ApprovalRefused("not_admin", "Only an admin may acknowledge flapping.")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": ["Say why moving the primary again is safe."]})
    locked = lock(request)
    if actor.pk == locked.requested_by_id:
        raise ApprovalRefused(
            "requester", "The requester cannot acknowledge flapping on their own request."
        )
    if locked.state not in AWAITING_START:
        raise IllegalTransition(locked.state, f"The request is {locked.state}.")
    now = now or timezone.now()
    locked.flap_acknowledged_by = actor
    locked.flap_acknowledged_at = now
    locked.flap_acknowledgement = comment
    locked._history_user = actor
    locked.save(
        update_fields=[
            "flap_acknowledged_by",
            "flap_acknowledged_at",
            "flap_acknowledgement",
            "updated_at",
        ]
    )
    audit.record(
        action="request.flap_acknowledged", actor=actor, obj=locked, after={"comment": comment}
    )
    notify_request(locked, "request.flap_acknowledged", f"Flapping acknowledged on #{locked.pk}")
    return sync(request, locked)


def _void_votes(request: ExecutionRequest, *, reason: str, now: datetime) -> int:
    count = 0
    for approval in request.approvals.filter(voided_at__isnull=True):
        approval.voided_at = now
        approval.void_reason = reason[:300]
        approval.save(update_fields=["voided_at", "void_reason"])
        count += 1
    return count


@transaction.atomic
def request_refresh(
    request: ExecutionRequest, *, actor: Any = "system", now: datetime | None = None
) -> bool:
    """Re-bind a waiting request to the policy and scope as they are now; True if it changed.

    When either changed, its approvals are void (an approval binds to what was approved), the
    request takes the new policy snapshot, and an approved request goes back to
    ``pending_approval``. Called before every vote, after policy edits and by the minute job.
    """
    locked = lock(request)
    if locked.state not in AWAITING_START:
        return False
    now = now or timezone.now()
    binding = evaluation.current_binding(locked)
    changed = evaluation.drift(locked, binding)
    if changed is None:
        return False
    changes: dict[str, Any] = {"scope_fingerprint": binding.scope_fingerprint}
    if binding.policy_snapshot is None:
        # No policy applies any more: nothing can be approved until one does (fail closed).
        changes["policy_fingerprint"] = ""
    else:
        changes.update(
            policy_id=binding.policy_snapshot["id"],
            policy_snapshot=binding.policy_snapshot,
            policy_fingerprint=binding.policy_fingerprint,
            expires_at=now + _validity(binding.policy_snapshot),
        )
    live = locked.approvals.filter(voided_at__isnull=True).exists()
    moved = any(getattr(locked, k) != v for k, v in changes.items() if k != "expires_at")
    if not live and not moved and locked.state == RequestState.PENDING_APPROVAL:
        return False  # already re-bound and nothing left to void: no repeated events
    voided = _void_votes(locked, reason=changed.message, now=now)
    audit_after = {"code": changed.code, "voided_approvals": voided}
    if locked.state == RequestState.APPROVED:
        changes["approved_at"] = None
        transition(
            locked,
            RequestState.PENDING_APPROVAL,
            actor=actor,
            reason=changed.message,
            now=now,
            changes=changes,
            audit_extra=audit_after,
        )
    else:
        before = {"policy_fingerprint": locked.policy_fingerprint}
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.state_reason = changed.message[:500]
        if is_user(actor):
            locked._history_user = actor
        locked.save()
        audit.record(
            action="request.approvals_voided",
            actor=actor,
            obj=locked,
            before=before,
            after={**audit_after, "policy_fingerprint": locked.policy_fingerprint},
        )
    sync(request, locked)
    return True


def requests_refresh_all(*, actor: Any = "system", now: datetime | None = None) -> int:
    """Refresh every waiting request (after a policy edit, and every minute for scope edits)."""
    ids = list(
        ExecutionRequest.objects.filter(state__in=AWAITING_START).values_list("pk", flat=True)
    )
    return sum(request_refresh(ExecutionRequest(pk=pk), actor=actor, now=now) for pk in ids)


def requests_expire_due(*, now: datetime | None = None) -> int:
    """Expire waiting requests past their validity; returns how many expired.

    Each request is handled in its own transaction under its row lock, and re-checked there,
    so a vote or a start racing the sweep wins or loses cleanly.
    """
    now = now or timezone.now()
    ids = list(
        ExecutionRequest.objects.filter(state__in=AWAITING_START, expires_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    expired = 0
    for pk in ids:
        with transaction.atomic():
            locked = lock(pk)
            if locked.state in AWAITING_START and locked.expires_at and locked.expires_at <= now:
                transition(
                    locked,
                    RequestState.EXPIRED,
                    actor="worker",
                    reason="The approval validity ran out before the request started.",
                    now=now,
                )
                expired += 1
    return expired
