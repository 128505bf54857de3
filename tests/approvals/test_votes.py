"""Votes: the requester never counts, one person one vote, roles covered by distinct people,
a denial rejects, and each approval records the readiness and the policy it approved under."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from approvals import services
from approvals.exceptions import ApprovalRefused, VoteConflict
from approvals.models import Approval
from audit.models import AuditEvent
from inventory.models import ResourceStatus


@pytest.mark.django_db
def test_tier1_needs_it_and_business_from_two_people(make_request, people):
    request = make_request()
    services.request_approve(request, actor=people["it"], comment="db side ok")
    request.refresh_from_db()
    assert request.state == "pending_approval"
    services.request_approve(request, actor=people["biz"], comment="business ok")
    request.refresh_from_db()
    assert request.state == "approved" and request.approved_at is not None
    event = AuditEvent.objects.get(action="request.approved")
    assert event.after["covered"] == {
        "approver_it": people["it"].pk,
        "approver_business": people["biz"].pk,
    }
    assert AuditEvent.objects.filter(action="approval.approved").count() == 2


@pytest.mark.django_db
def test_one_person_with_both_roles_counts_once(make_request, people):
    request = make_request()
    services.request_approve(request, actor=people["both"], comment="ok")
    request.refresh_from_db()
    assert request.state == "pending_approval"
    with pytest.raises(VoteConflict) as err:
        services.request_approve(request, actor=people["both"], comment="again")
    assert err.value.code == "already_voted"
    assert Approval.objects.filter(request=request).count() == 1


@pytest.mark.django_db
def test_two_people_each_with_both_roles_cover_the_policy(make_request, people):
    request = make_request()
    services.request_approve(request, actor=people["both"])
    services.request_approve(request, actor=people["both2"])
    request.refresh_from_db()
    assert request.state == "approved"


@pytest.mark.django_db
def test_a_role_already_covered_is_not_needed(make_request, people):
    request = make_request()
    services.request_approve(request, actor=people["it"])
    with pytest.raises(ApprovalRefused) as err:
        services.request_approve(request, actor=people["it2"])
    assert err.value.code == "not_needed" and "approver_business" in err.value.message
    # and the person who holds both roles can still help by covering business
    services.request_approve(request, actor=people["both"])
    request.refresh_from_db()
    assert request.state == "approved"


@pytest.mark.django_db
def test_requester_never_counts_even_as_approver_and_admin(make_request, make_user, sites):
    boss = make_user("operator", "approver_it", "approver_business", "admin", username="boss")
    request = make_request(actor=boss)
    for vote in (services.request_approve, services.request_deny):
        with pytest.raises(ApprovalRefused) as err:
            vote(request, actor=boss, comment="mine")
        assert err.value.code == "requester"
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_requester_vote_slipped_into_the_table_does_not_count(make_request, make_user, people):
    """Defence in depth: even a vote row by the requester is never counted."""
    boss = make_user("operator", "approver_it", username="boss")
    request = make_request(actor=boss)
    Approval.objects.create(
        request=request,
        approver=boss,
        decision="approve",
        roles=["approver_it"],
        policy_fingerprint=request.policy_fingerprint,
        scope_fingerprint=request.scope_fingerprint,
        at=timezone.now(),
    )
    services.request_approve(request, actor=people["biz"])
    request.refresh_from_db()
    assert request.state == "pending_approval"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["admin", "viewer", "auditor", "op2"])
def test_only_approver_roles_vote(make_request, people, who):
    request = make_request()
    with pytest.raises(ApprovalRefused) as err:
        services.request_approve(request, actor=people[who])
    assert err.value.code == "not_approver"


@pytest.mark.django_db
def test_denial_rejects_and_needs_a_comment(make_request, people):
    request = make_request()
    with pytest.raises(ValidationError) as err:
        services.request_deny(request, actor=people["biz"], comment="  ")
    assert "comment" in err.value.message_dict
    services.request_approve(request, actor=people["it"])
    services.request_deny(request, actor=people["biz"], comment="not during month end")
    request.refresh_from_db()
    assert request.state == "rejected" and "month end" in request.state_reason
    with pytest.raises(VoteConflict) as conflict:
        services.request_approve(request, actor=people["both"])
    assert conflict.value.code == "state" and conflict.value.current_state == "rejected"


@pytest.mark.django_db
def test_late_denial_rejects_an_approved_request(approved, people):
    services.request_deny(approved, actor=people["both"], comment="incident open on DR")
    approved.refresh_from_db()
    assert approved.state == "rejected"


@pytest.mark.django_db
def test_approval_records_readiness_and_fingerprint(make_request, people, resource):
    ResourceStatus.objects.create(
        resource=resource,
        state="yellow",
        visibility="ok",
        lag_seconds=42.5,
        lag_bytes=1024,
        reasons=[{"code": "lag_above_yellow", "message": "lag 42 s"}],
        observed_at=timezone.now(),
    )
    request = make_request()
    approval = services.request_approve(request, actor=people["it"], comment="ok")
    (row,) = approval.readiness
    assert (row["name"], row["state"], row["visibility"], row["lag_seconds"]) == (
        "orders-db",
        "yellow",
        "ok",
        42.5,
    )
    assert row["reasons"] == ["lag_above_yellow"] and row["lag_bytes"] == 1024
    assert approval.policy_fingerprint == request.policy_fingerprint
    assert approval.roles == ["approver_it"]


@pytest.mark.django_db
def test_unobserved_resource_reads_as_lost(make_request, people):
    approval = services.request_approve(make_request(), actor=people["it"])
    assert approval.readiness[0]["visibility"] == "lost"
    assert approval.readiness[0]["reasons"] == ["never_observed"]


@pytest.mark.django_db
def test_tier2_and_non_production_need_one_approver(make_request, make_resource, people, sites):
    tier2 = make_resource("billing", tier=2)
    request = make_request(resource=tier2)
    with pytest.raises(ApprovalRefused):
        services.request_approve(request, actor=people["biz"])  # tier 2 requires IT
    services.request_approve(request, actor=people["it"])
    request.refresh_from_db()
    assert request.state == "approved"
    staging = make_resource("orders-staging", tier=1, environment="staging")
    light = make_request(resource=staging, change_ticket="")
    services.request_approve(light, actor=people["biz"])
    light.refresh_from_db()
    assert light.state == "approved"
