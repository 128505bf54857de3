"""Single sign-on in a real browser: Chromium follows the authorization-code flow from the live
Django server to the loopback OpenID provider and back, and lands with the roles its groups
map to; after the IdP drops one of the person's groups, the next login lands without that role.
The MFA requirement for approvers is exercised on the way (one-time code or not)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from bcservice.accounts.models import RoleMapping
from bcservice.accounts.services import role_mapping_save
from bcservice.roles import user_roles

pytestmark = pytest.mark.e2e


def sign_in(browser: Any, base_url: str, username: str, password: str, otp: str = "") -> Any:
    """A fresh browser (no cookies anywhere) logs in through the IdP; returns its page."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/oidc/authenticate/?next=/app/")
    page.wait_for_selector("#username")  # the IdP's login page
    assert page.url.startswith("http://127.0.0.1:")
    page.fill("#username", username)
    page.fill("#password", password)
    if otp:
        page.fill("#otp", otp)
    with page.expect_navigation(url=f"{base_url}/app/**"):
        page.click("#sign-in")
    return page


def whoami(page: Any) -> dict[str, Any]:
    response = page.context.request.get("/api/v1/me/")
    assert response.status == 200, response.text()
    return response.json()


def test_browser_login_lands_with_mapped_roles_and_loses_a_dropped_group(
    chromium, sso_live, oidc_idp, settings
):
    settings.BC_APPROVER_REQUIRED_ACR = ["urn:bc:mfa"]
    for claim_value, role in (("bc-operators", "operator"), ("bc-it-approvers", "approver_it")):
        role_mapping_save(actor=None, mapping=RoleMapping(claim_value=claim_value, role=role))
    oidc_idp.set_user(
        "erin", "pw-erin", ["bc-operators", "bc-it-approvers"], otp="246810", name="Erin Example"
    )

    page = sign_in(chromium, sso_live.url, "erin", "pw-erin", otp="246810")
    session_cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Lax"
    me = whoami(page)
    assert me["username"] == "erin" and me["display_name"] == "Erin Example"
    assert me["roles"] == ["approver_it", "operator"] and me["auth_method"] == "oidc"
    assert me["approver_mfa"]["ok"] is True
    user = get_user_model().objects.get(username="erin")
    assert user_roles(user) == {"approver_it", "operator"}
    page.context.close()

    # The IdP takes erin out of the approvers' group; the next login drops the role.
    oidc_idp.set_user("erin", "pw-erin", ["bc-operators"], otp="246810", name="Erin Example")
    page = sign_in(chromium, sso_live.url, "erin", "pw-erin", otp="246810")
    assert whoami(page)["roles"] == ["operator"]
    event = AuditEvent.objects.get(action="user.roles_synced", object_name="erin")
    assert (event.before["roles"], event.after["roles"]) == (
        ["approver_it", "operator"],
        ["operator"],
    )
    page.context.close()


def test_browser_login_without_the_second_factor_withholds_approver_roles(
    chromium, sso_live, oidc_idp, settings
):
    settings.BC_APPROVER_REQUIRED_ACR = ["urn:bc:mfa"]
    role_mapping_save(actor=None, mapping=RoleMapping(claim_value="biz", role="approver_business"))
    oidc_idp.set_user("finn", "pw-finn", ["biz"], otp="135790")
    page = sign_in(chromium, sso_live.url, "finn", "pw-finn")
    me = whoami(page)
    assert me["roles"] == []
    assert me["approver_mfa"]["withheld_roles"] == ["approver_business"]
    assert "requires acr=urn:bc:mfa; your login had acr=urn:bc:pwd" in json.dumps(me)
    page.context.close()
