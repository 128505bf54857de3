"""BC_LOCAL_LOGIN (all, breakglass, none) is enforced by the authentication backend: every
password door obeys it, existing password sessions end when the policy forbids them, and API
tokens are not password logins."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import AuditEvent
from bcservice.accounts.models import Identity
from bcservice.accounts.services import api_token_create, identity_set_breakglass
from tests.identity.test_tokens import token_client

pytestmark = pytest.mark.django_db
PASSWORD = "pw-Secret-123"  # tests/conftest.py make_user's default

# Every door that takes a password: the admin's login and the app's login page.
DOORS = [("/admin/login/", "/admin/"), ("/app/login/", "/app/")]


def password_login(door: str, username: str) -> Client:
    client = Client()
    client.post(door, {"username": username, "password": PASSWORD, "next": "/app/"})
    return client


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize(("door", "_"), DOORS)
def test_all_lets_every_local_account_in(users, door, _):
    assert logged_in(password_login(door, "u_admin"))


@pytest.mark.parametrize(("door", "_"), DOORS)
def test_breakglass_admits_only_flagged_accounts(users, make_user, settings, door, _):
    settings.BC_LOCAL_LOGIN = "breakglass"
    glass = make_user("admin", username="glass")
    identity_set_breakglass(actor="cli", user=glass, breakglass=True)
    assert not logged_in(password_login(door, "u_admin"))
    assert logged_in(password_login(door, "glass"))


@pytest.mark.parametrize(("door", "_"), DOORS)
def test_none_admits_nobody_with_a_password(users, make_user, settings, door, _):
    settings.BC_LOCAL_LOGIN = "none"
    glass = make_user("admin", username="glass")
    identity_set_breakglass(actor="cli", user=glass, breakglass=True)
    assert not logged_in(password_login(door, "glass"))
    assert not logged_in(password_login(door, "u_viewer"))


def test_tightening_the_policy_ends_existing_password_sessions(users, make_user, settings):
    glass = make_user("admin", username="glass")
    identity_set_breakglass(actor=None, user=glass, breakglass=True)
    ordinary = password_login("/app/login/", "u_viewer")
    flagged = password_login("/app/login/", "glass")
    assert ordinary.get("/api/v1/me/").status_code == 200
    settings.BC_LOCAL_LOGIN = "breakglass"
    assert ordinary.get("/api/v1/me/").status_code in (401, 403)
    assert flagged.get("/api/v1/me/").json()["breakglass"] is True


def test_tokens_work_whatever_the_password_policy(users, settings):
    settings.BC_LOCAL_LOGIN = "none"
    _, value = api_token_create(actor=None, user=users["auditor"], name="svc")
    assert token_client(value).get("/api/v1/sites/").status_code == 200


def test_bc_breakglass_command_flags_and_unflags_with_audit(users, capsys):
    call_command("bc_breakglass", "u_admin")
    assert Identity.objects.get(user=users["admin"]).breakglass
    call_command("bc_breakglass", "u_admin", "--off")
    assert not Identity.objects.get(user=users["admin"]).breakglass
    events = AuditEvent.objects.filter(action="user.breakglass_set").order_by("seq")
    assert [e.after["breakglass"] for e in events] == [True, False]
    assert {e.context for e in events} == {"cli"}
    with pytest.raises(CommandError, match="no user named"):
        call_command("bc_breakglass", "nobody")


def test_oidc_accounts_cannot_be_break_glass(users):
    Identity.objects.create(user=users["viewer"], source="oidc", issuer="i", subject="s")
    with pytest.raises(CommandError, match="cannot be a break-glass"):
        call_command("bc_breakglass", "u_viewer")


def test_admin_sets_the_flag_through_the_audited_service(users, client):
    client.force_login(users["admin"])
    response = client.post(
        "/admin/accounts/identity/add/", {"user": users["operator"].pk, "breakglass": "on"}
    )
    assert response.status_code == 302, response.content[:1500]
    assert Identity.objects.get(user=users["operator"]).breakglass
    assert AuditEvent.objects.filter(action="user.breakglass_set", actor_name="u_admin").exists()


def test_admin_refuses_to_flag_an_oidc_account(users, client):
    identity = Identity.objects.create(user=users["viewer"], source="oidc", issuer="i", subject="s")
    client.force_login(users["admin"])
    response = client.post(f"/admin/accounts/identity/{identity.pk}/change/", {"breakglass": "on"})
    assert response.status_code == 200 and b"cannot be a break-glass" in response.content
    identity.refresh_from_db()
    assert not identity.breakglass
