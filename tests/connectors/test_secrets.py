"""Secret resolution: backends, purposes, and errors that never carry the secret."""

from __future__ import annotations

import json

import pytest

from connectors import secrets
from connectors.secrets import SecretError, resolve, sanitize

SPLIT = {
    "monitor": {"username": "bc_monitor", "password": "mon-Pa55word"},
    "execute": {"username": "bc_exec", "password": "exec-Pa55word"},
}
FLAT = {"username": "demo", "password": "demo-Pa55word", "port": 5432}


@pytest.fixture
def secrets_file(tmp_path, settings):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"lab/postgres": SPLIT, "flat": FLAT, "bad": "text"}))
    settings.BC_SECRETS_FILE = str(path)
    return path


def test_env_split_by_purpose(monkeypatch):
    monkeypatch.setenv("BC_TEST_DB", json.dumps(SPLIT))
    assert resolve("env:BC_TEST_DB", "monitor") == SPLIT["monitor"]
    assert resolve("env:BC_TEST_DB", "execute") == SPLIT["execute"]


def test_env_flat_serves_both_purposes_as_strings(monkeypatch):
    monkeypatch.setenv("BC_TEST_DB", json.dumps(FLAT))
    assert resolve("env:BC_TEST_DB", "monitor") == {
        "username": "demo",
        "password": "demo-Pa55word",
        "port": "5432",
    }


def test_file_and_bare_path(secrets_file):
    assert resolve("file:lab/postgres", "monitor") == SPLIT["monitor"]
    assert resolve("lab/postgres", "execute") == SPLIT["execute"]


def test_file_is_reread_when_it_changes(secrets_file):
    assert resolve("flat", "monitor")["username"] == "demo"
    secrets_file.write_text(json.dumps({"flat": {"username": "renamed", "password": "x-123456"}}))
    assert resolve("flat", "monitor")["username"] == "renamed"


@pytest.mark.parametrize(
    ("ref", "purpose", "expected"),
    [
        ("env:BC_UNSET_VAR", "monitor", "is not set"),
        ("env:BC_NOT_JSON", "monitor", "not valid JSON"),
        ("file:missing", "monitor", "not in the secrets file"),
        ("bad", "monitor", "not a JSON object"),
        ("lab/postgres", "admin", "unknown credentials purpose"),
        ("nosuch:thing", "monitor", "unknown secret backend"),
        ("", "monitor", "no secret reference"),
        ("env:", "monitor", "names nothing"),
    ],
)
def test_errors_are_clear(secrets_file, monkeypatch, ref, purpose, expected):
    monkeypatch.setenv("BC_NOT_JSON", "hunter2-is-my-password")
    with pytest.raises(SecretError, match=expected) as info:
        resolve(ref, purpose)
    assert "hunter2" not in str(info.value)


def test_missing_purpose_in_split_entry(monkeypatch):
    monkeypatch.setenv("BC_ONLY_MONITOR", json.dumps({"monitor": SPLIT["monitor"]}))
    with pytest.raises(SecretError, match="no 'execute' credentials") as info:
        resolve("env:BC_ONLY_MONITOR", "execute")
    assert "mon-Pa55word" not in str(info.value)


def test_missing_file(settings, tmp_path):
    settings.BC_SECRETS_FILE = str(tmp_path / "absent.json")
    with pytest.raises(SecretError, match="does not exist"):
        resolve("lab/postgres", "monitor")


def test_vault_placeholder_says_what_is_missing(monkeypatch):
    """Until a Vault backend is registered (connectors.apps), vault: references fail clearly."""
    monkeypatch.setitem(secrets.BACKENDS, "vault", secrets._vault_backend)
    with pytest.raises(SecretError, match="identity/secrets issue"):
        resolve("vault:kv/db/orders", "monitor")


def test_backends_can_be_added(monkeypatch):
    monkeypatch.setitem(secrets.BACKENDS, "vault", lambda path, purpose: {"token": path})
    assert resolve("vault:kv/x", "monitor") == {"token": "kv/x"}


def test_sanitize_scrubs_values_keys_and_connection_strings():
    dirty = {
        "error": "FATAL: password authentication failed for s3cr3t-value",
        "dsn": "postgresql://bc_monitor:s3cr3t-value@db1:5432/postgres",
        "odbc": "DRIVER=FreeTDS;UID=bc;PWD=another-one;SERVER=x",
        "password": "whatever",
        "nested": [{"api_key": "k"}, "s3cr3t-value"],
        "ok": 5,
    }
    clean = sanitize(dirty, {"s3cr3t-value"})
    text = json.dumps(clean)
    assert "s3cr3t-value" not in text and "another-one" not in text and "whatever" not in text
    assert clean["ok"] == 5
    assert clean["dsn"] == "postgresql://bc_monitor:***@db1:5432/postgres"
    assert clean["nested"][0] == {"api_key": "***"}
