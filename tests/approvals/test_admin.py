"""Admin: policies and the break-glass list are editable (audited, with history); requests,
votes and grants are read-only with history."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals import services
from approvals.models import (
    Approval,
    ApprovalPolicy,
    BreakGlassEligibility,
    BreakGlassGrant,
    ExecutionRequest,
)
from audit.models import AuditEvent


@pytest.fixture
def admin_client_bc(client, people):
    client.force_login(people["admin"])
    return client


def _url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.mark.django_db
def test_pages_load(admin_client_bc, approved, eligible, resource):
    grant = services.breakglass_open(actor=eligible, resource=resource, minutes=5, reason="x")
    vote = approved.approvals.first()
    policy = ApprovalPolicy.objects.first()
    for model, obj in [
        (ApprovalPolicy, policy),
        (ExecutionRequest, approved),
        (Approval, vote),
        (BreakGlassGrant, grant),
        (BreakGlassEligibility, BreakGlassEligibility.objects.first()),
    ]:
        for url in [
            _url(model, "changelist"),
            _url(model, "change", obj.pk),
            _url(model, "history", obj.pk),
        ]:
            assert admin_client_bc.get(url).status_code == 200, url


@pytest.mark.django_db
@pytest.mark.parametrize("model", [ExecutionRequest, Approval, BreakGlassGrant])
def test_records_are_read_only(admin_client_bc, approved, model):
    assert admin_client_bc.get(_url(model, "add")).status_code == 403
    obj = model.objects.first() or approved
    if model is BreakGlassGrant:
        return
    response = admin_client_bc.post(_url(model, "change", obj.pk), {"reason": "changed"})
    assert response.status_code == 403
    assert admin_client_bc.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403


@pytest.mark.django_db
def test_policy_edit_through_admin_is_audited_with_history_and_voids(
    admin_client_bc, approved, people
):
    policy = ApprovalPolicy.objects.get(tier=1, kind="", environment="")
    form = {
        "name": policy.name,
        "tier": 1,
        "kind": "",
        "environment": "",
        "min_approvers": 3,
        "required_roles": ["approver_it", "approver_business"],
        "require_change_ticket": "on",
        "change_ticket_pattern": policy.change_ticket_pattern,
        "approval_validity_minutes": 240,
        "flap_window_minutes": 30,
        "description": "",
    }
    response = admin_client_bc.post(_url(ApprovalPolicy, "change", policy.pk), form)
    assert response.status_code == 302, response.content[:2000]
    policy.refresh_from_db()
    assert policy.min_approvers == 3
    assert sorted(policy.required_roles) == ["approver_business", "approver_it"]
    event = AuditEvent.objects.get(action="approvalpolicy.updated")
    assert (event.before["min_approvers"], event.after["min_approvers"]) == (2, 3)
    assert event.actor_name == "adm" and event.context == "web"
    assert policy.history.first().history_user == people["admin"]
    approved.refresh_from_db()
    assert approved.state == "pending_approval"


@pytest.mark.django_db
def test_policy_admin_refuses_bad_rules(admin_client_bc, default_policies):
    form = {
        "name": "bad",
        "tier": 2,
        "kind": "drill",
        "environment": "",
        "min_approvers": 1,
        "required_roles": ["approver_it", "approver_business"],
        "change_ticket_pattern": "([",
        "approval_validity_minutes": 60,
        "flap_window_minutes": 0,
    }
    response = admin_client_bc.post(_url(ApprovalPolicy, "add"), form)
    assert response.status_code == 200  # the form again, with errors
    assert not ApprovalPolicy.objects.filter(name="bad").exists()


@pytest.mark.django_db
def test_breakglass_list_is_maintained_in_admin(admin_client_bc, people):
    response = admin_client_bc.post(
        _url(BreakGlassEligibility, "add"), {"user": people["op2"].pk, "note": "on-call"}
    )
    assert response.status_code == 302
    assert services.is_eligible(people["op2"])
    eligibility = BreakGlassEligibility.objects.get(user=people["op2"])
    assert AuditEvent.objects.filter(action="breakglass.eligibility_added").exists()
    admin_client_bc.post(_url(BreakGlassEligibility, "delete", eligibility.pk), {"post": "yes"})
    assert not services.is_eligible(people["op2"])
    assert AuditEvent.objects.filter(action="breakglass.eligibility_removed").exists()
    assert BreakGlassEligibility.history.count() == 2


@pytest.mark.django_db
def test_auditor_reads_but_cannot_edit_policies(client, people, default_policies):
    client.force_login(people["auditor"])
    policy = ApprovalPolicy.objects.first()
    assert client.get(_url(ApprovalPolicy, "changelist")).status_code == 200
    assert client.post(_url(ApprovalPolicy, "change", policy.pk), {"name": "x"}).status_code == 403
