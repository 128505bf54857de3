"""Role mappings and the login sync, without an IdP: the rules of oidc_login_sync and of the
admin's mapping form, and mfa_ok for every kind of login."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from rest_framework.request import Request

from audit.models import AuditEvent
from bcservice.accounts.models import Identity, RoleMapping
from bcservice.accounts.services import LoginRefused, OidcLogin, oidc_login_sync, role_mapping_save
from bcservice.auth import mfa_ok
from bcservice.auth.session import AUTH_SESSION_KEY
from bcservice.roles import user_roles

pytestmark = pytest.mark.django_db


def login(username: str = "kim", groups=(), subject: str | None = None, **kw) -> OidcLogin:
    values = {
        "issuer": "https://idp.example",
        "subject": subject or f"sub-{username}",
        "username": username,
        "email": f"{username}@example.org",
        "first_name": username.title(),
        "last_name": "",
        "groups": tuple(groups),
        "acr": "",
        "amr": (),
    }
    values.update(kw)
    return OidcLogin(**values)


def test_roles_are_the_union_of_matching_mappings_and_staff_follows(mapping):
    mapping("g-admin", "admin")
    mapping("g-view", "viewer")
    user, _ = oidc_login_sync(login=login(groups=["g-admin", "g-view", "other"]))
    assert user_roles(user) == {"admin", "viewer"} and user.is_staff
    user, _ = oidc_login_sync(login=login(groups=["g-view"]))
    assert user_roles(user) == {"viewer"} and not user.is_staff


def test_one_scoped_mapping_limits_the_user(mapping, make_resource):
    """Scope belongs to the user: the safe reading wins over an unscoped viewer mapping."""
    db1, db2 = make_resource("db1"), make_resource("db2")
    mapping("everyone", "viewer")
    mapping("db1-ops", "operator", resources=[db1])
    from inventory.selectors import resources_for

    user, _ = oidc_login_sync(login=login(groups=["everyone", "db1-ops"]))
    assert list(resources_for(user)) == [db1]
    user, _ = oidc_login_sync(login=login(groups=["everyone"]))
    assert set(resources_for(user)) == {db1, db2}


def test_group_scope_and_members(mapping, make_resource):
    from inventory.models import ResourceGroup
    from inventory.selectors import groups_for, resources_for
    from inventory.services import group_set_members

    a, b, _ = make_resource("a"), make_resource("b"), make_resource("c")
    group = ResourceGroup.objects.create(name="payments", tier=1)
    group_set_members(actor=None, group=group, resources=[a, b])
    mapping("pay-ops", "operator", resource_groups=[group])
    user, _ = oidc_login_sync(login=login(groups=["pay-ops"]))
    assert set(resources_for(user)) == {a, b} and list(groups_for(user)) == [group]


def test_groups_that_are_not_roles_are_left_alone(mapping):
    mapping("g", "viewer")
    user, _ = oidc_login_sync(login=login(groups=["g"]))
    extra = Group.objects.create(name="reporting")
    user.groups.add(extra)
    oidc_login_sync(login=login(groups=[]))
    assert list(user.groups.all()) == [extra]


def test_only_changes_are_audited():
    oidc_login_sync(login=login(groups=[]))
    oidc_login_sync(login=login(groups=[]))
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["user.created"]


def test_the_idp_renaming_a_person_follows_the_subject(mapping):
    user, _ = oidc_login_sync(login=login("kim", subject="s-1"))
    renamed, _ = oidc_login_sync(login=login("kim.lee", subject="s-1"))
    assert renamed.pk == user.pk and renamed.username == "kim.lee"


def test_refusals(make_user):
    oidc_login_sync(login=login("kim", subject="s-1"))
    with pytest.raises(LoginRefused, match="belongs to another IdP subject"):
        oidc_login_sync(login=login("kim", subject="s-2"))
    oidc_login_sync(login=login("lou", subject="s-3"))
    with pytest.raises(LoginRefused, match="already another account"):
        oidc_login_sync(login=login("lou", subject="s-1"))
    make_user("viewer", username="local")
    with pytest.raises(LoginRefused, match="local account named 'local' exists"):
        oidc_login_sync(login=login("local"))


def test_approver_roles_are_withheld_when_the_login_falls_short(mapping):
    mapping("it", "approver_it")
    mapping("ops", "operator")
    user, withheld = oidc_login_sync(
        login=login(
            groups=["it", "ops"], acr="pwd", approver_refusal="approver role requires acr=mfa"
        )
    )
    assert user_roles(user) == {"operator"} and withheld == ["approver_it"]
    event = AuditEvent.objects.get(action="user.created")
    assert event.after["withheld_because"] == "approver role requires acr=mfa"


def test_admin_and_auditor_mappings_cannot_be_scoped(make_resource):
    db = make_resource("db")
    for role in ("admin", "auditor"):
        with pytest.raises(ValidationError, match="always sees everything"):
            role_mapping_save(
                actor=None, mapping=RoleMapping(claim_value="x", role=role), resources=[db]
            )


def test_mapping_admin_saves_with_audit_and_refuses_a_scoped_admin(users, client, make_resource):
    db = make_resource("db")
    client.force_login(users["admin"])
    url = "/admin/accounts/rolemapping/add/"
    bad = client.post(url, {"claim_value": "g", "role": "admin", "resources": [db.pk]})
    assert bad.status_code == 200 and b"always sees everything" in bad.content
    good = client.post(url, {"claim_value": "ops-db", "role": "operator", "resources": [db.pk]})
    assert good.status_code == 302
    mapping = RoleMapping.objects.get(claim_value="ops-db")
    assert list(mapping.resources.all()) == [db]
    event = AuditEvent.objects.get(action="rolemapping.created")
    assert event.after["resources"] == ["db"] and event.actor_name == "u_admin"
    assert mapping.history.count() >= 1


def _request(session_info: dict | None = None, auth=None) -> Request:
    django_request = RequestFactory().get("/")
    django_request.session = SessionStore()
    if session_info is not None:
        django_request.session[AUTH_SESSION_KEY] = session_info
    request = Request(django_request)
    request._auth = auth
    return request


def test_mfa_ok_for_each_kind_of_login(settings, users):
    from bcservice.accounts.services import api_token_create

    assert mfa_ok(_request()) == (True, "")  # no requirement configured
    settings.BC_APPROVER_REQUIRED_ACR = ["urn:mfa", "urn:hwk"]
    ok, reason = mfa_ok(_request({"method": "password"}))
    assert not ok and reason.startswith("approver role requires acr in (urn:mfa, urn:hwk)")
    token, _ = api_token_create(actor=None, user=users["approver_it"], name="t")
    assert "API token" in mfa_ok(_request({"method": "oidc", "acr": "urn:mfa"}, auth=token))[1]
    assert mfa_ok(_request({"method": "oidc", "acr": "urn:hwk", "amr": []})) == (True, "")
    ok, reason = mfa_ok(_request({"method": "oidc", "acr": "pwd"}))
    assert reason.endswith("your login had acr=pwd")
    # A user without a request: judged by the last OIDC login on record.
    assert not mfa_ok(users["approver_it"])[0]
    Identity.objects.create(user=users["approver_it"], source="oidc", issuer="i", subject="s")
    assert "no login through the IdP" in mfa_ok(users["approver_it"])[1]
