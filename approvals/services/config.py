"""Admin-side writes: approval policies and the break-glass list, audited, with history.

A policy edit re-binds every waiting request in the same transaction, so approvals given under
the old rules are void the moment the new rules are committed.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from approvals.models import ApprovalPolicy, BreakGlassEligibility
from approvals.services.requests import requests_refresh_all
from approvals.services.transitions import is_user
from audit import services as audit
from audit.snapshot import snapshot


@transaction.atomic
def policy_save(*, actor: Any, policy: ApprovalPolicy) -> ApprovalPolicy:
    creating = policy.pk is None
    before = None
    if not creating:
        before = snapshot(ApprovalPolicy.objects.select_for_update().filter(pk=policy.pk).first())
    policy.full_clean()
    if is_user(actor):
        policy._history_user = actor
    policy.save()
    audit.record(
        action="approvalpolicy.created" if creating else "approvalpolicy.updated",
        actor=actor,
        obj=policy,
        before=before,
        after=snapshot(policy),
    )
    requests_refresh_all(actor=actor)
    return policy


@transaction.atomic
def policy_delete(*, actor: Any, policy: ApprovalPolicy) -> None:
    before, pk, name = snapshot(policy), policy.pk, policy.name
    if is_user(actor):
        policy._history_user = actor
    policy.delete()
    audit.record(
        action="approvalpolicy.deleted",
        actor=actor,
        object_type="approvals.approvalpolicy",
        object_id=pk,
        object_name=name,
        before=before,
    )
    requests_refresh_all(actor=actor)


@transaction.atomic
def eligibility_save(*, actor: Any, eligibility: BreakGlassEligibility) -> BreakGlassEligibility:
    creating = eligibility.pk is None
    eligibility.full_clean()
    if is_user(actor):
        eligibility._history_user = actor
    eligibility.save()
    audit.record(
        action="breakglass.eligibility_added" if creating else "breakglass.eligibility_updated",
        actor=actor,
        obj=eligibility,
        after={"user": eligibility.user.get_username(), "note": eligibility.note},
    )
    return eligibility


@transaction.atomic
def eligibility_delete(*, actor: Any, eligibility: BreakGlassEligibility) -> None:
    name = eligibility.user.get_username()
    pk = eligibility.pk
    if is_user(actor):
        eligibility._history_user = actor
    eligibility.delete()
    audit.record(
        action="breakglass.eligibility_removed",
        actor=actor,
        object_type="approvals.breakglasseligibility",
        object_id=pk,
        object_name=name,
        before={"user": name},
    )
