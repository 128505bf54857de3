"""Break-glass: open, close and review grants; maintain who may open them.

Everything is audited in the same transaction and notifies after commit: a grant bypasses the
approvals, so people must hear about it at once, and an approver must sign it off afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import scope
from approvals.exceptions import ApprovalRefused, VoteConflict
from approvals.models import BreakGlassEligibility, BreakGlassGrant
from approvals.services.transitions import is_user
from audit import services as audit
from audit.snapshot import snapshot
from bcservice.roles import ADMIN, APPROVER_ROLES, OPERATOR, has_role
from inventory.models import Resource, ResourceGroup
from notifications.services import notify

DEFAULT_MAX_MINUTES = 240


def max_minutes() -> int:
    """The longest grant allowed (settings.BC_BREAKGLASS_MAX_MINUTES, default 4 h)."""
    return int(getattr(settings, "BC_BREAKGLASS_MAX_MINUTES", DEFAULT_MAX_MINUTES))


def is_eligible(user: Any) -> bool:
    """In the admin-maintained list and able to act (operator or admin): an auditor or viewer
    put on the list by mistake still cannot open a grant."""
    return (
        is_user(user)
        and has_role(user, OPERATOR, ADMIN)
        and BreakGlassEligibility.objects.filter(user_id=user.pk).exists()
    )


def _notify(grant: BreakGlassGrant, kind: str, subject: str, **extra: Any) -> None:
    members = scope.members(resource=grant.resource, group=grant.group)
    tier, environment = scope.profile(
        resource=grant.resource, group=grant.group, scope_members=members
    )
    payload = {
        "grant": grant.pk,
        "grantee": grant.grantee.get_username(),
        "scope": str(grant.resource or grant.group),
        "reason": grant.reason,
        "starts_at": grant.starts_at.isoformat(),
        "ends_at": grant.ends_at.isoformat(),
        **extra,
    }
    resource_id = grant.resource_id
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
def breakglass_open(
    *,
    actor: Any,
    reason: str,
    minutes: int,
    resource: Resource | None = None,
    group: ResourceGroup | None = None,
    now: datetime | None = None,
) -> BreakGlassGrant:
    """Open a grant for ``actor`` (the grantee is always the person opening it)."""
    if not is_eligible(actor):
        raise ApprovalRefused(
            "not_eligible", "You are not in the break-glass list; an admin maintains it."
        )
    errors: dict[str, list[str]] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["A reason is required."]
    limit = max_minutes()
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= limit:
        errors["minutes"] = [f"Between 1 and {limit} minutes."]
    if (resource is None) == (group is None):
        errors["scope"] = ['Give exactly one of {"resource": id} or {"group": id}.']
    if errors:
        raise ValidationError(errors)
    now = now or timezone.now()
    grant = BreakGlassGrant(
        grantee=actor,
        opened_by=actor,
        resource=resource,
        group=group,
        reason=reason,
        minutes=minutes,
        starts_at=now,
        ends_at=now + timedelta(minutes=minutes),
    )
    grant._history_user = actor
    grant.save()
    audit.record(action="breakglass.opened", actor=actor, obj=grant, after=snapshot(grant))
    _notify(grant, "breakglass.opened", f"Break-glass opened by {actor.get_username()}: {reason}")
    return grant


def _lock(grant: BreakGlassGrant) -> BreakGlassGrant:
    return (
        BreakGlassGrant.objects.select_for_update(of=("self",))
        .select_related("grantee", "resource", "group")
        .get(pk=grant.pk)
    )


@transaction.atomic
def breakglass_close(
    grant: BreakGlassGrant, *, actor: Any, now: datetime | None = None
) -> BreakGlassGrant:
    """End an active grant early (its grantee or an admin)."""
    locked = _lock(grant)
    if actor.pk != locked.grantee_id and not has_role(actor, ADMIN):
        raise ApprovalRefused("not_grantee", "Only the grantee or an admin may close a grant.")
    now = now or timezone.now()
    if not locked.is_active(now):
        raise VoteConflict("ended", "not_active", "The grant is not active.")
    locked.ends_at, locked.closed_at, locked.closed_by = now, now, actor
    locked._history_user = actor
    locked.save(update_fields=["ends_at", "closed_at", "closed_by"])
    audit.record(
        action="breakglass.closed", actor=actor, obj=locked, after={"ends_at": now.isoformat()}
    )
    _notify(locked, "breakglass.closed", f"Break-glass #{locked.pk} closed")
    return locked


@transaction.atomic
def breakglass_review(
    grant: BreakGlassGrant, *, actor: Any, comment: str, now: datetime | None = None
) -> BreakGlassGrant:
    """An approver (not the grantee) signs off an ended grant, taking it off the review list."""
    if not has_role(actor, *APPROVER_ROLES):
        raise ApprovalRefused("not_approver", "Only approvers review break-glass grants.")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": ["Say what you checked."]})
    locked = _lock(grant)
    if actor.pk in (locked.grantee_id, locked.opened_by_id):
        raise ApprovalRefused("grantee", "The grantee cannot review their own grant.")
    now = now or timezone.now()
    if locked.reviewed_at is not None:
        raise VoteConflict("reviewed", "already_reviewed", "The grant is already reviewed.")
    if locked.ends_at > now:
        raise VoteConflict("active", "still_active", "Review the grant after it has ended.")
    locked.reviewed_by, locked.reviewed_at, locked.review_comment = actor, now, comment
    locked._history_user = actor
    locked.save(update_fields=["reviewed_by", "reviewed_at", "review_comment"])
    audit.record(action="breakglass.reviewed", actor=actor, obj=locked, after={"comment": comment})
    _notify(locked, "breakglass.reviewed", f"Break-glass #{locked.pk} reviewed")
    return locked
