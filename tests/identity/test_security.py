"""Session and cookie security: the session key rotates at login, CSRF guards every unsafe
method for session logins, cookies carry the right flags, and production settings harden them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from bcservice.accounts.services import api_token_create
from tests.identity.test_tokens import token_client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Secret-123"


def test_password_login_rotates_the_session_key(users):
    client = Client()
    client.get("/app/login/")  # a pre-login session (e.g. planted by an attacker)
    client.session.save()
    session = client.session
    session["planted"] = "x"
    session.save()
    before = session.session_key
    client.cookies["sessionid"] = before
    response = client.post("/app/login/", {"username": "u_viewer", "password": PASSWORD})
    assert response.status_code == 302
    after = client.cookies["sessionid"].value
    assert after != before and "_auth_user_id" in client.session


def test_login_cookie_flags(users):
    client = Client()
    response = client.post("/app/login/", {"username": "u_viewer", "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert 0 < int(cookie["max-age"]) <= 8 * 3600


# Unsafe methods on routes every role may reach; the CSRF check runs before the view's own.
UNSAFE = [
    ("post", "/api/v1/sites/"),
    ("patch", "/api/v1/resources/1/"),
    ("put", "/api/v1/resources/1/"),
    ("delete", "/api/v1/resources/1/"),
    ("post", "/api/v1/requests/"),
    ("post", "/api/v1/breakglass/"),
]


@pytest.mark.parametrize(("method", "url"), UNSAFE)
def test_session_writes_without_the_csrf_token_are_403(users, method, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    response = getattr(client, method)(url, data="{}", content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_write_with_the_csrf_token_passes_the_check(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    client.get("/app/")  # the app's page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/sites/",
        data=json.dumps({"name": "north", "region": "eu-north-1", "role": "primary"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201, response.content


def test_token_requests_need_no_csrf_token(users):
    _, value = api_token_create(actor=None, user=users["admin"], name="automation")
    client = token_client(value)
    client.enforce_csrf_checks = True
    body = {"name": "south", "region": "eu-south-1", "role": "dr"}
    assert client.post("/api/v1/sites/", body, format="json").status_code == 201


def test_me_needs_a_login_and_options_do_not(users, client):
    assert client.get("/api/v1/me/").status_code == 401
    options = client.get("/api/v1/auth/options/").json()
    assert options == {
        "oidc": False,
        "oidc_login_url": "/oidc/authenticate/",
        "local_login": "all",
        "sso_error": "",
    }


def test_me_for_a_password_login(users, client):
    client.post("/app/login/", {"username": "u_approver_it", "password": PASSWORD})
    data = client.get("/api/v1/me/").json()
    assert data["roles"] == ["approver_it"] and data["auth_method"] == "password"
    assert data["approver_mfa"] == {
        "required": False,
        "ok": True,
        "reason": "",
        "withheld_roles": [],
    }


def _production_settings(tmp_path: Path) -> dict:
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k)"
        " for k in ['SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_NAME',"
        " 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_SAMESITE',"
        " 'SESSION_COOKIE_AGE', 'SECURE_HSTS_SECONDS', 'LOGIN_URL']}))"
    )
    env = {
        **os.environ,
        "BC_PRODUCTION": "1",
        "BC_SECRET_KEY": "k" * 50,
        "BC_ALLOWED_HOSTS": "bc.example.org",
        "BC_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "BC_OIDC_ISSUER": "https://idp.example.org",
        "BC_OIDC_CLIENT_ID": "bc",
        "BC_OIDC_CLIENT_SECRET": "s",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_and_host_locked(tmp_path):
    values = _production_settings(tmp_path)
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["LOGIN_URL"] == "/oidc/authenticate/"  # SSO configured: log in there


def test_an_unknown_local_login_policy_refuses_to_start(tmp_path):
    env = {**os.environ, "BC_LOCAL_LOGIN": "sometimes", "BC_SQLITE_PATH": str(tmp_path / "d")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "BC_LOCAL_LOGIN" in result.stderr
