"""The start check (invariant 1) and the services the executions app calls; approvals bind to
the policy and scope they were given under."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from approvals import services
from approvals.exceptions import ApprovalRefused, RequestNotStartable
from approvals.models import ApprovalPolicy, ExecutionRequest
from audit.models import AuditEvent
from bcservice.api.exceptions import IllegalTransition
from inventory.models import GroupMembership, ResourceGroup, ResourceStatus


def _blocked(request, actor, code: str) -> RequestNotStartable:
    with pytest.raises(RequestNotStartable) as err:
        services.request_check_startable(request, actor=actor, now=timezone.now())
    assert err.value.code == code, err.value.message
    return err.value


@pytest.mark.django_db
def test_approved_request_starts_and_finishes(approved, people):
    services.request_check_startable(approved, actor=people["op"], now=timezone.now())
    services.request_mark_running(approved, actor=people["op"])
    assert approved.state == "running" and approved.started_at is not None
    event = AuditEvent.objects.get(action="request.running")
    assert event.after["basis"] == "approvals"
    services.request_mark_finished(approved, actor="worker", succeeded=True)
    approved.refresh_from_db()
    assert approved.state == "succeeded"


@pytest.mark.django_db
def test_pending_request_cannot_start(make_request, people):
    request = make_request()
    services.request_approve(request, actor=people["it"])
    error = _blocked(request, people["op"], "not_approved")
    assert "approver_business" in error.message and error.current_state == "pending_approval"
    with pytest.raises(RequestNotStartable):
        services.request_mark_running(request, actor=people["op"])
    request.refresh_from_db()
    assert request.state == "pending_approval"


@pytest.mark.django_db
def test_failed_request_is_never_reused(approved, people):
    services.request_mark_running(approved, actor=people["op"])
    services.request_mark_finished(approved, actor="worker", succeeded=False, detail="step 3")
    _blocked(approved, people["op"], "state")
    for target in ("pending_approval", "approved", "running"):
        with pytest.raises(IllegalTransition):
            services.transition(approved, target, actor=people["admin"], reason="retry")


@pytest.mark.django_db
def test_expired_request_cannot_start_even_before_the_sweep(approved, people):
    ExecutionRequest.objects.filter(pk=approved.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    approved.refresh_from_db()
    _blocked(approved, people["op"], "expired")


@pytest.mark.django_db
def test_policy_change_voids_approvals(approved, people):
    policy = ApprovalPolicy.objects.get(tier=1, kind="", environment="")
    policy.approval_validity_minutes = 120
    services.policy_save(actor=people["admin"], policy=policy)
    approved.refresh_from_db()
    assert approved.state == "pending_approval"
    assert "policy" in approved.state_reason
    assert approved.policy_snapshot["approval_validity_minutes"] == 120
    assert all(a.voided_at for a in approved.approvals.all())
    assert AuditEvent.objects.filter(action="approvalpolicy.updated").exists()
    assert AuditEvent.objects.get(action="request.pending_approval").after["voided_approvals"] == 2
    _blocked(approved, people["op"], "not_approved")
    # the same people may approve again, under the new policy
    services.request_approve(approved, actor=people["it"])
    services.request_approve(approved, actor=people["biz"])
    approved.refresh_from_db()
    assert approved.state == "approved"
    services.request_check_startable(approved, actor=people["op"], now=timezone.now())


@pytest.mark.django_db
def test_policy_that_applies_changes_under_an_approved_request(approved, people, resource):
    """A resource moved to tier 2 resolves another policy: start refused before any sweep."""
    resource.tier = 2
    resource.save()
    error = _blocked(approved, people["op"], "policy_changed")
    assert "fresh" in error.message
    assert services.requests_refresh_all() == 1
    approved.refresh_from_db()
    assert approved.state == "pending_approval"
    assert approved.policy_snapshot["tier"] == 2


@pytest.mark.django_db
def test_more_specific_policy_added_voids_approvals(approved, people):
    services.policy_save(
        actor=people["admin"],
        policy=ApprovalPolicy(name="t1 switchover", tier=1, kind="switchover", min_approvers=1),
    )
    approved.refresh_from_db()
    assert approved.state == "pending_approval"
    assert approved.policy_snapshot["name"] == "t1 switchover"


@pytest.mark.django_db
def test_no_policy_any_more_fails_closed(approved, people):
    ApprovalPolicy.objects.filter(tier=1).delete()
    _blocked(approved, people["op"], "no_policy")
    services.requests_refresh_all()
    approved.refresh_from_db()
    assert approved.state == "pending_approval" and approved.policy_fingerprint == ""
    # a second sweep has nothing more to do and writes nothing
    events = AuditEvent.objects.count()
    assert services.requests_refresh_all() == 0 and AuditEvent.objects.count() == events


@pytest.fixture
def group(make_resource):
    group = ResourceGroup.objects.create(name="payments", tier=1)
    for i, name in enumerate(["pay-db", "pay-ledger"]):
        GroupMembership.objects.create(group=group, resource=make_resource(name), position=i)
    return group


@pytest.mark.django_db
def test_group_scope_change_voids_approvals(make_request, people, group, make_resource):
    request = make_request(group=group)
    services.request_approve(request, actor=people["it"])
    services.request_approve(request, actor=people["biz"])
    GroupMembership.objects.create(group=group, resource=make_resource("pay-cache"), position=2)
    _blocked(request, people["op"], "scope_changed")
    services.requests_refresh_all()
    request.refresh_from_db()
    assert request.state == "pending_approval"


@pytest.mark.django_db
def test_target_validation(make_request, make_resource, sites, group):
    from inventory.models import Site

    elsewhere = Site.objects.create(name="tokyo", region="ap-1", role="dr")
    with pytest.raises(ValidationError) as err:
        make_request(target_site=elsewhere)
    assert "target_site" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        make_request(target_site=sites["east"])  # already the primary
    assert "already its primary" in str(err.value)
    with pytest.raises(ValidationError):
        make_request(kind="failback", target_site=sites["west"])  # failback goes home
    make_request(kind="drill", target_site=sites["west"])
    # a group: every member is checked
    odd = make_resource("odd-one", primary_site=elsewhere, dr_site=sites["east"])
    GroupMembership.objects.create(group=group, resource=odd, position=5)
    with pytest.raises(ValidationError) as err:
        make_request(group=group)
    assert "odd-one" in str(err.value)


@pytest.mark.django_db
def test_observed_roles_decide_the_current_primary(approved, people, resource, sites):
    """After monitoring sees the DR side as primary, a switchover to it is refused at start."""
    ResourceStatus.objects.create(resource=resource, primary_role="standby", dr_role="primary")
    _blocked(approved, people["op"], "target_invalid")


@pytest.mark.django_db
def test_anti_flapping_needs_an_admin_acknowledgement(make_request, people, sites):
    first = make_request()
    ExecutionRequest.objects.filter(pk=first.pk).update(
        state="succeeded",
        started_at=timezone.now() - timedelta(minutes=12),
        finished_at=timezone.now() - timedelta(minutes=10),
    )
    # (the first switchover's finish recorded west as the current site; a failback from home
    # would be refused)
    first.resource.current_site = sites["west"]
    first.resource.save(update_fields=["current_site"])
    second = make_request(kind="failback", target_site=sites["east"])
    services.request_approve(second, actor=people["it"])
    services.request_approve(second, actor=people["biz"])
    second.refresh_from_db()
    _blocked(second, people["op"], "flapping")
    with pytest.raises(ApprovalRefused):
        services.request_acknowledge_flapping(second, actor=people["it"], comment="ok")
    with pytest.raises(ValidationError):
        services.request_acknowledge_flapping(second, actor=people["admin"], comment="")
    services.request_acknowledge_flapping(
        second, actor=people["admin"], comment="first move was a drill gone wrong; go back"
    )
    second.refresh_from_db()
    assert second.flap_acknowledged_by == people["admin"]
    services.request_check_startable(second, actor=people["op"], now=timezone.now())
    assert AuditEvent.objects.filter(action="request.flap_acknowledged").exists()
    # outside the window (30 min for tier 1) nothing is needed (the failback brought it home)
    first.resource.current_site = sites["east"]
    first.resource.save(update_fields=["current_site"])
    third = make_request()
    services.request_approve(third, actor=people["it"])
    services.request_approve(third, actor=people["biz"])
    third.refresh_from_db()
    later = timezone.now() + timedelta(minutes=25)
    services.request_check_startable(third, actor=people["op"], now=later)


@pytest.mark.django_db
def test_requester_cannot_acknowledge_own_flapping(make_request, make_user, sites):
    boss = make_user("operator", "admin", username="boss")
    request = make_request(actor=boss)
    with pytest.raises(ApprovalRefused) as err:
        services.request_acknowledge_flapping(request, actor=boss, comment="trust me")
    assert err.value.code == "requester"


@pytest.mark.django_db
def test_cancel_by_requester_or_admin_only(make_request, people):
    request = make_request()
    with pytest.raises(ApprovalRefused):
        services.request_cancel(request, actor=people["op2"])
    services.request_cancel(request, actor=people["op"], reason="window moved")
    assert request.state == "cancelled"
    with pytest.raises(IllegalTransition) as err:
        services.request_cancel(request, actor=people["admin"])
    assert err.value.current_state == "cancelled"
    other = make_request()
    services.request_cancel(other, actor=people["admin"])
    assert other.state == "cancelled"


@pytest.mark.django_db
def test_empty_group_is_refused(make_request):
    empty = ResourceGroup.objects.create(name="empty", tier=1)
    with pytest.raises(ValidationError) as err:
        make_request(group=empty)
    assert "group" in err.value.message_dict
