"""Cross-cutting behaviour: health probes, request ids in responses and logs, bc_user, settings."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from bcservice.logging import JsonFormatter, RequestIdFilter
from bcservice.roles import user_roles

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_request_id_is_returned_and_a_safe_incoming_id_is_kept(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    hostile = client.get("/healthz", HTTP_X_REQUEST_ID="x\nforged log line")["X-Request-ID"]
    assert "\n" not in hostile and hostile != "x\nforged log line"


def test_log_lines_are_json_with_request_id():
    from bcservice import request_context

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    with request_context.bind("worker", "rid-42"):
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert (line["request_id"], line["context"], line["level"]) == ("rid-42", "worker", "INFO")


@pytest.mark.django_db
def test_bc_user_creates_updates_and_prints_token(capsys):
    call_command(
        "bc_user",
        "dana",
        "--roles",
        "operator,approver_it",
        "--password",
        "x-Y-z-123456",
        "--token",
    )
    out = capsys.readouterr().out.strip().splitlines()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="dana")
    # The printed value authenticates; only its digest is stored.
    from bcservice.accounts.models import ApiToken
    from bcservice.auth.tokens import token_digest, token_for_value

    assert token_for_value(out[-1]).user == user
    assert ApiToken.objects.get(user=user).digest == token_digest(out[-1])
    assert user_roles(user) == {"operator", "approver_it"}
    assert user.check_password("x-Y-z-123456") and not user.is_staff
    call_command("bc_user", "dana", "--roles", "auditor")
    user.refresh_from_db()
    user._bc_roles = None
    assert user_roles(user) == {"auditor"} and user.is_staff
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["user.created", "token.rotated", "user.roles_set"]
    assert "x-Y-z-123456" not in json.dumps(list(AuditEvent.objects.values("before", "after")))


@pytest.mark.django_db
@pytest.mark.parametrize("roles", ["superuser", "operator,root", ""])
def test_bc_user_refuses_unknown_roles(roles):
    with pytest.raises(CommandError):
        call_command("bc_user", "eve", "--roles", roles)


def _run_manage(args: list[str], extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **extra_env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_without_warnings(tmp_path):
    result = _run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "BC_PRODUCTION": "1",
            "BC_SECRET_KEY": "k" * 20 + "-production-like-secret-key-value-with-entropy-9f3a8b",
            "BC_ALLOWED_HOSTS": "bc.example.org",
            "BC_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    result = _run_manage(
        ["check"],
        {"BC_PRODUCTION": "1", "BC_SECRET_KEY": "", "BC_SQLITE_PATH": str(tmp_path / "d")},
    )
    assert result.returncode != 0 and "BC_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_api_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/resources/" in schema.content
    assert client.get("/api/docs/").status_code == 200
