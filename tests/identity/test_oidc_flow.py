"""OIDC login against a real OpenID provider on loopback (no browser: requests plays its part).

Covers user creation from claims, group claims mapped to roles and scope, roles recomputed at
every login, audit events only for changes, the MFA requirement for approvers, refused logins,
session rotation, and that no secret reaches logs, audit events or the session.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from audit.models import AuditEvent
from bcservice.accounts.models import Identity
from bcservice.auth import mfa_ok
from bcservice.auth.session import AUTH_SESSION_KEY
from bcservice.roles import user_roles
from inventory import selectors as inventory_selectors
from tests.identity.idp import me

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
User = get_user_model()


def test_first_login_creates_the_user_with_mapped_roles(oidc_idp, sso, client, mapping):
    mapping("bc-operators", "operator")
    mapping("bc-it-approvers", "approver_it")
    mapping("unrelated", "admin")
    oidc_idp.set_user(
        "olga", "pw-olga", ["bc-operators", "bc-it-approvers", "staff"], name="Olga Ops"
    )
    response = sso.login("olga", "pw-olga")
    assert response.status_code == 302 and response["Location"] == "/app/"

    user = User.objects.get(username="olga")
    assert user_roles(user) == {"operator", "approver_it"}
    assert not user.is_staff and not user.has_usable_password()
    identity = Identity.objects.get(user=user)
    assert (identity.source, identity.subject, identity.issuer) == ("oidc", "olga", oidc_idp.issuer)
    assert identity.idp_groups == ["bc-it-approvers", "bc-operators", "staff"]
    data = me(client)
    assert data["username"] == "olga" and data["display_name"] == "Olga Ops"
    assert data["roles"] == ["approver_it", "operator"]
    assert (data["resources"], data["groups"], data["auth_method"]) == ("all", "all", "oidc")
    event = AuditEvent.objects.get(action="user.created", object_name="olga")
    assert event.after["roles"] == ["approver_it", "operator"]
    assert event.after["matched_groups"] == ["bc-it-approvers", "bc-operators"]
    assert event.context == "web"


def test_losing_a_group_at_the_idp_loses_the_role_at_next_login(oidc_idp, sso, client, mapping):
    mapping("bc-operators", "operator")
    mapping("bc-biz", "approver_business")
    oidc_idp.set_user("pia", "pw", ["bc-operators", "bc-biz"])
    sso.login("pia", "pw")
    assert me(client)["roles"] == ["approver_business", "operator"]

    # Same groups again: nothing changed, nothing audited.
    client.logout()
    sso.login("pia", "pw")
    assert AuditEvent.objects.filter(action="user.roles_synced").count() == 0

    oidc_idp.set_user("pia", "pw", ["bc-operators"])
    client.logout()
    sso.login("pia", "pw")
    assert me(client)["roles"] == ["operator"]
    event = AuditEvent.objects.get(action="user.roles_synced")
    assert event.before["roles"] == ["approver_business", "operator"]
    assert event.after["roles"] == ["operator"]
    assert event.actor_name == "pia"


def test_scope_from_mappings_follows_the_groups(oidc_idp, sso, client, mapping, make_resource):
    east, west, other = make_resource("east-db"), make_resource("west-db"), make_resource("x-db")
    mapping("team-east", "operator", resources=[east])
    mapping("team-west", "viewer", resources=[west])
    oidc_idp.set_user("sam", "pw", ["team-east", "team-west"])
    sso.login("sam", "pw")
    data = me(client)
    assert data["roles"] == ["operator", "viewer"]
    assert data["resources"] == sorted([east.pk, west.pk])
    user = User.objects.get(username="sam")
    assert set(inventory_selectors.resources_for(user)) == {east, west}

    oidc_idp.set_user("sam", "pw", ["team-west"])
    client.logout()
    sso.login("sam", "pw")
    assert me(client)["resources"] == [west.pk]
    assert other.pk not in me(client)["resources"]
    event = AuditEvent.objects.get(action="user.roles_synced")
    assert event.before["scope"]["resources"] == sorted([east.pk, west.pk])
    assert event.after["scope"]["resources"] == [west.pk]


def test_approver_roles_need_the_required_acr(oidc_idp, sso, client, mapping, settings):
    settings.BC_APPROVER_REQUIRED_ACR = ["urn:bc:mfa"]
    mapping("bc-it-approvers", "approver_it")
    mapping("bc-operators", "operator")
    oidc_idp.set_user("ivy", "pw", ["bc-it-approvers", "bc-operators"], otp="424242")

    sso.login("ivy", "pw")  # password only
    data = me(client)
    assert data["roles"] == ["operator"]
    mfa = data["approver_mfa"]
    assert mfa["required"] is True and mfa["ok"] is False
    assert mfa["withheld_roles"] == ["approver_it"]
    assert mfa["reason"] == ("approver role requires acr=urn:bc:mfa; your login had acr=urn:bc:pwd")
    created = AuditEvent.objects.get(action="user.created", object_name="ivy")
    assert created.after["withheld_roles"] == ["approver_it"]
    ok, reason = mfa_ok(User.objects.get(username="ivy"))
    assert not ok and "acr=urn:bc:pwd" in reason

    client.logout()
    sso.login("ivy", "pw", otp="424242")
    data = me(client)
    assert data["roles"] == ["approver_it", "operator"]
    assert data["approver_mfa"] == {
        "required": True,
        "ok": True,
        "reason": "",
        "withheld_roles": [],
    }
    assert mfa_ok(User.objects.get(username="ivy")) == (True, "")


def test_amr_requirement(oidc_idp, sso, client, mapping, settings):
    settings.BC_APPROVER_REQUIRED_AMR = ["otp", "hwk"]
    mapping("biz", "approver_business")
    oidc_idp.set_user("abe", "pw", ["biz"], otp="111111")
    sso.login("abe", "pw")
    reason = me(client)["approver_mfa"]["reason"]
    assert reason == "approver role requires amr including otp or hwk; your login had amr=pwd"
    client.logout()
    sso.login("abe", "pw", otp="111111")
    assert me(client)["roles"] == ["approver_business"]


def test_login_rotates_the_session_and_stores_no_tokens(oidc_idp, sso, client, mapping):
    mapping("ops", "operator")
    oidc_idp.set_user("rob", "pw", ["ops"])
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    before = client.session.session_key
    assert before  # the state and nonce live in this pre-login session
    sso.login("rob", "pw")
    after = client.session.session_key
    assert after and after != before
    assert not Session.objects.filter(session_key=before).exists()
    stored = client.session.load()
    assert stored[AUTH_SESSION_KEY]["method"] == "oidc"
    assert not any(k in stored for k in ("oidc_access_token", "oidc_id_token"))


def test_no_secret_in_logs_audit_or_session(oidc_idp, sso, client, mapping, caplog):
    caplog.set_level(logging.DEBUG)
    mapping("ops", "operator")
    oidc_idp.set_user("sue", "pw-sue-secret", ["ops"])
    sso.login("sue", "pw-sue-secret")
    audit_text = json.dumps(list(AuditEvent.objects.values("before", "after", "object_name")))
    session_text = json.dumps(client.session.load(), default=str)
    for secret in (oidc_idp.client_secret, "pw-sue-secret"):
        assert secret not in caplog.text
        assert secret not in audit_text
        assert secret not in session_text


def test_a_local_account_of_the_same_name_is_not_taken_over(
    oidc_idp, sso, client, make_user, mapping, settings
):
    make_user("admin", username="root-like")
    mapping("ops", "operator")
    oidc_idp.set_user("root-like", "pw", ["ops"])
    response = sso.login("root-like", "pw")
    assert response.status_code == 302 and response["Location"].startswith("/app/login/")
    assert "_auth_user_id" not in client.session
    options = client.get("/api/v1/auth/options/").json()
    assert "local account named 'root-like' exists" in options["sso_error"]
    assert client.get("/api/v1/auth/options/").json()["sso_error"] == ""  # shown once

    settings.BC_OIDC_LINK_LOCAL_USERS = True
    sso.login("root-like", "pw")
    assert me(client)["roles"] == ["operator"]  # the IdP now decides this account's roles


def test_a_break_glass_account_is_never_linked(oidc_idp, sso, client, make_user, settings):
    from bcservice.accounts.services import identity_set_breakglass

    settings.BC_OIDC_LINK_LOCAL_USERS = True
    identity_set_breakglass(actor=None, user=make_user("admin", username="bg"), breakglass=True)
    oidc_idp.set_user("bg", "pw", [])
    sso.login("bg", "pw")
    assert "_auth_user_id" not in client.session
    assert Identity.objects.get(user__username="bg").source == "local"


def test_user_with_no_mapped_group_logs_in_without_roles(oidc_idp, sso, client):
    oidc_idp.set_user("nora", "pw", ["nothing-mapped"])
    sso.login("nora", "pw")
    data = me(client)
    assert data["roles"] == [] and data["resources"] == []
    assert client.get("/api/v1/resources/").status_code == 403


def test_a_deactivated_user_cannot_log_in_and_loses_its_session(oidc_idp, sso, client, mapping):
    mapping("ops", "operator")
    oidc_idp.set_user("dee", "pw", ["ops"])
    sso.login("dee", "pw")
    User.objects.filter(username="dee").update(is_active=False)
    assert client.get("/api/v1/me/").status_code in (401, 403)
    sso.login("dee", "pw")
    assert client.get("/api/v1/me/").status_code == 401
    assert "deactivated" in client.get("/api/v1/auth/options/").json()["sso_error"]
    assert user_roles(User.objects.get(username="dee")) == frozenset()  # inactive: no roles


def test_wrong_client_secret_fails_cleanly(oidc_idp, sso, client, settings, caplog):
    settings.OIDC_RP_CLIENT_SECRET = "not-the-secret-value"
    oidc_idp.set_user("wes", "pw", [])
    response = sso.login("wes", "pw")
    assert response.status_code == 302 and response["Location"].startswith("/app/login/")
    assert "_auth_user_id" not in client.session
    assert "not-the-secret-value" not in caplog.text
    assert "OIDC callback failed: HTTPError (HTTP 401)" in caplog.text


def test_unreachable_idp_sends_people_back_to_the_login_page(settings, client, db):
    from bcservice.auth import oidc

    oidc._discovery_cache.clear()
    settings.BC_OIDC_ISSUER = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "id", "secret"
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 302 and response["Location"] == "/app/login/?sso=failed"
    assert "cannot be reached" in client.get("/api/v1/auth/options/").json()["sso_error"]


def test_sso_is_off_without_configuration(client, db):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert client.get("/api/v1/auth/options/").json()["oidc"] is False


def test_forged_callback_state_is_refused(sso, client):
    client.get("/oidc/authenticate/")
    response = client.get("/oidc/callback/?code=abc&state=not-mine")
    assert response.status_code == 302 and response["Location"].startswith("/app/login/")
    assert "_auth_user_id" not in client.session
