"""API tokens: only a digest is stored, shown once in the admin, revocable, expiring, last use
recorded (at most once a minute), and ``bc_user --token`` keeps printing a working token."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from bcservice.accounts.models import ApiToken
from bcservice.accounts.services import api_token_create, api_token_revoke
from bcservice.auth.tokens import token_digest

pytestmark = pytest.mark.django_db


def token_client(value: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    return client


def test_a_token_authenticates_and_only_its_digest_is_stored(users):
    token, value = api_token_create(actor=users["admin"], user=users["auditor"], name="export")
    assert value.startswith("bct_") and len(value) > 40
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert value not in json.dumps(row, default=str)
    assert row["digest"] == token_digest(value) and row["prefix"] == value[:12]

    response = token_client(value).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "u_auditor"
    assert response.json()["auth_method"] == "token"
    token.refresh_from_db()
    assert token.last_used_at is not None

    event = AuditEvent.objects.get(action="token.created")
    assert event.actor_name == "u_admin" and event.object_name == "u_auditor"
    assert value not in json.dumps([event.before, event.after])
    assert token.digest not in json.dumps([event.before, event.after])


def test_revoked_expired_unknown_and_inactive_tokens_get_the_same_401(users):
    _, revoked = api_token_create(actor=None, user=users["viewer"], name="a")
    api_token_revoke(actor=users["admin"], token=ApiToken.objects.get(name="a"))
    _, expired = api_token_create(
        actor=None,
        user=users["viewer"],
        name="b",
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    _, inactive = api_token_create(actor=None, user=users["operator"], name="c")
    users["operator"].is_active = False
    users["operator"].save()
    bodies = set()
    for value in (revoked, expired, inactive, "bct_unknown", "x" * 500):
        response = token_client(value).get("/api/v1/resources/")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        bodies.add(response.content)
    assert len(bodies) == 1  # no hint which case it was
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token \u00e9t\u00e9"])
def test_malformed_headers_are_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.encode("utf-8").decode("latin-1"))
    assert client.get("/api/v1/resources/").status_code == 401


def test_last_use_is_written_at_most_once_a_minute(users):
    token, value = api_token_create(actor=None, user=users["viewer"], name="busy")
    client = token_client(value)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get("/api/v1/sites/")
        first = ApiToken.objects.get(pk=token.pk).last_used_at
        with CaptureQueriesContext(connection) as queries:
            client.get("/api/v1/sites/")
        assert not [q for q in queries if q["sql"].startswith("UPDATE")]
        clock.shift(61)
        client.get("/api/v1/sites/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_bc_user_token_rotation_revokes_the_previous_token(capsys):
    call_command("bc_user", "svc-export", "--roles", "auditor", "--token")
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert token_client(first).get("/api/v1/sites/").status_code == 200
    call_command("bc_user", "svc-export", "--roles", "auditor", "--token")
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert first != second
    assert token_client(first).get("/api/v1/sites/").status_code == 401
    assert token_client(second).get("/api/v1/sites/").status_code == 200
    assert not any(
        first in str(e.after) or second in str(e.after) for e in AuditEvent.objects.all()
    )


def test_admin_creates_a_token_and_shows_it_once(users, client):
    client.force_login(users["admin"])
    response = client.post(
        "/admin/accounts/apitoken/add/",
        {"user": users["auditor"].pk, "name": "auditor export", "expires_at_0": "", "_save": "1"},
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(name="auditor export")
    body = response.content.decode()
    value = body.split('id="bc-new-token" type="text" readonly size="60" value="')[1].split('"')[0]
    assert token.digest == token_digest(value)
    assert token.created_by == users["admin"]
    # Never again: not on the change page, not in the list.
    for url in (f"/admin/accounts/apitoken/{token.pk}/change/", "/admin/accounts/apitoken/"):
        page = client.get(url)
        assert page.status_code == 200 and value not in page.content.decode()
    assert token_client(value).get("/api/v1/sites/").status_code == 200


def test_admin_revokes_tokens_with_the_action(users, client):
    token, value = api_token_create(actor=None, user=users["viewer"], name="old")
    client.force_login(users["admin"])
    response = client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == users["admin"]
    assert token_client(value).get("/api/v1/sites/").status_code == 401


def test_tokens_cannot_be_deleted_and_auditors_only_read_them(users, client):
    token, _ = api_token_create(actor=None, user=users["viewer"], name="keep")
    client.force_login(users["admin"])
    assert client.get(f"/admin/accounts/apitoken/{token.pk}/delete/").status_code == 403
    client.force_login(users["auditor"])
    assert client.get("/admin/accounts/apitoken/").status_code == 200
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403


def test_drf_tokens_are_imported_as_digests():
    """The data migration's function, run against the live app registry."""
    import importlib

    from django.apps import apps
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create(username="legacy")
    legacy = Token.objects.create(user=user)
    migration = importlib.import_module("bcservice.accounts.migrations.0002_import_drf_tokens")
    migration.import_tokens(apps, None)
    assert not Token.objects.exists()
    imported = ApiToken.objects.get(user=user)
    assert imported.digest == token_digest(legacy.key)
    assert token_client(legacy.key).get("/api/v1/me/").status_code == 200
