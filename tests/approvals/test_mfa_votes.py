"""MFA for approvers: when BC_APPROVER_REQUIRED_ACR/AMR is set, only a session that logged in
through the IdP with the required acr/amr may approve; the API says why before anyone clicks.

Denials need no MFA (they can only stop a change)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from approvals import services
from approvals.exceptions import ApprovalRefused
from bcservice.auth.session import AUTH_SESSION_KEY

URL = "/api/v1/requests/"
pytestmark = pytest.mark.django_db


def _session(user, **info) -> APIClient:
    """A real session login, with what the OIDC backend would remember about it."""
    client = APIClient()
    client.force_login(user)
    session = client.session
    session[AUTH_SESSION_KEY] = info
    session.save()
    return client


@pytest.fixture
def mfa_required(settings):
    settings.BC_APPROVER_REQUIRED_ACR = ["urn:bc:mfa"]


def test_password_session_cannot_approve_and_is_told_why(mfa_required, make_request, people):
    request = make_request()
    client = _session(people["it"], method="password")
    url = f"{URL}{request.pk}/"
    view = client.get(url).json()
    assert view["can_approve"] is False
    assert "acr=urn:bc:mfa" in view["why_not"] and "local password" in view["why_not"]
    refused = client.post(url + "approve/", {"comment": "ok"}, format="json")
    assert refused.status_code == 403
    assert request.approvals.count() == 0
    request.refresh_from_db()
    assert request.state == "pending_approval"


def test_oidc_session_without_the_acr_cannot_approve(mfa_required, make_request, people):
    request = make_request()
    client = _session(people["it"], method="oidc", acr="urn:bc:pwd", amr=["pwd"])
    refused = client.post(f"{URL}{request.pk}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert request.approvals.count() == 0


def test_oidc_session_with_the_acr_approves(mfa_required, make_request, people):
    request = make_request()
    client = _session(people["it"], method="oidc", acr="urn:bc:mfa", amr=["otp"])
    url = f"{URL}{request.pk}/"
    assert client.get(url).json()["can_approve"] is True
    done = client.post(url + "approve/", {"comment": "ok"}, format="json")
    assert done.status_code == 200, done.json()
    assert [a["approver"] for a in done.json()["approvals"]] == ["it1"]


def test_deny_needs_no_mfa(mfa_required, make_request, people):
    request = make_request()
    client = _session(people["it"], method="password")
    denied = client.post(f"{URL}{request.pk}/deny/", {"comment": "not now"}, format="json")
    assert denied.status_code == 200
    assert denied.json()["state"] == "rejected"


def test_service_call_without_a_session_judges_the_last_idp_login(
    mfa_required, make_request, people
):
    request = make_request()
    with pytest.raises(ApprovalRefused) as refused:
        services.request_approve(request, actor=people["it"], comment="ok")
    assert refused.value.code == "mfa_required"
    assert "no login through the IdP" in str(refused.value)


def test_without_a_requirement_a_password_session_approves(make_request, people):
    request = make_request()
    client = _session(people["it"], method="password")
    assert client.post(f"{URL}{request.pk}/approve/", {}, format="json").status_code == 200
