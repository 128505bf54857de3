"""The ``vault:`` backend against a real OpenBao dev server: KV v2 reads through the resolver,
token and AppRole logins, per-purpose paths and policies, and errors that never carry a secret."""

from __future__ import annotations

import pytest

from connectors import secrets, vault
from connectors.secrets import SecretError
from tests.secrets.conftest import make_approle

MON_PW = "mon-Pw-7c1e0b9d"  # noqa: S105 - test values, searched for in error messages
EXE_PW = "exe-Pw-41f2aa63"  # noqa: S105

MONITOR_POLICY = 'path "secret/data/bcservice/db/+/monitor" { capabilities = ["read"] }'
EXECUTE_POLICY = 'path "secret/data/bcservice/db/+/execute" { capabilities = ["read"] }'


@pytest.fixture
def stored(bao_root):
    kv = bao_root.secrets.kv.v2
    kv.create_or_update_secret(
        path="bcservice/db/orders/monitor", secret={"username": "bc_monitor", "password": MON_PW}
    )
    kv.create_or_update_secret(
        path="bcservice/db/orders/execute", secret={"username": "bc_execute", "password": EXE_PW}
    )
    kv.create_or_update_secret(
        path="bcservice/db/legacy",
        secret={
            "monitor": {"username": "m", "password": MON_PW},
            "execute": {"username": "x", "password": EXE_PW},
        },
    )
    return kv


def _assert_clean(message: str, *extra: str) -> None:
    for value in (MON_PW, EXE_PW, *extra):
        assert value not in message


def test_per_purpose_paths_resolve_through_the_resolver(vault_env, stored):
    ref = "vault:bcservice/db/orders#purpose"
    assert secrets.resolve(ref, "monitor") == {"username": "bc_monitor", "password": MON_PW}
    assert secrets.resolve(ref, "execute") == {"username": "bc_execute", "password": EXE_PW}


def test_one_secret_with_both_accounts(vault_env, stored):
    assert secrets.resolve("vault:bcservice/db/legacy", "monitor")["username"] == "m"
    assert secrets.resolve("vault:/bcservice/db/legacy/", "execute")["password"] == EXE_PW


def test_values_are_read_on_every_call_never_cached(vault_env, stored):
    ref = "vault:bcservice/db/orders#purpose"
    assert secrets.resolve(ref, "execute")["password"] == EXE_PW
    stored.create_or_update_secret(
        path="bcservice/db/orders/execute", secret={"username": "bc_execute", "password": "rotated"}
    )
    assert secrets.resolve(ref, "execute")["password"] == "rotated"


def test_missing_path_is_a_secret_error_without_values(vault_env, stored):
    with pytest.raises(SecretError) as info:
        secrets.resolve("vault:bcservice/db/nothing-here#purpose", "monitor")
    message = str(info.value)
    assert "bcservice/db/nothing-here/monitor" in message and "nothing at" in message
    _assert_clean(message, vault_env["root_token"])


def test_wrong_token_is_a_secret_error_without_the_token(vault_env, stored, monkeypatch):
    monkeypatch.setenv("BC_VAULT_TOKEN", "s.not-a-real-token-123")
    vault.forget_logins()
    with pytest.raises(SecretError) as info:
        secrets.resolve("vault:bcservice/db/orders#purpose", "monitor")
    assert "denied" in str(info.value)
    _assert_clean(str(info.value), "s.not-a-real-token-123", vault_env["root_token"])


def test_approle_identities_keep_monitoring_away_from_execution_accounts(
    vault_env, stored, bao_root, monkeypatch
):
    mon_role, mon_secret = make_approle(bao_root, "bc-monitor", MONITOR_POLICY)
    exe_role, exe_secret = make_approle(bao_root, "bc-execute", EXECUTE_POLICY)
    monkeypatch.delenv("BC_VAULT_TOKEN")
    monkeypatch.setenv("BC_VAULT_ROLE_ID", mon_role)
    monkeypatch.setenv("BC_VAULT_SECRET_ID", mon_secret)
    vault.forget_logins()
    ref = "vault:bcservice/db/orders#purpose"
    assert secrets.resolve(ref, "monitor")["password"] == MON_PW
    # Without an execution identity, the monitoring one is used, and its policy says no.
    with pytest.raises(SecretError) as info:
        secrets.resolve(ref, "execute")
    assert "denied" in str(info.value)
    _assert_clean(str(info.value), mon_secret, mon_role)

    monkeypatch.setenv("BC_VAULT_EXECUTE_ROLE_ID", exe_role)
    monkeypatch.setenv("BC_VAULT_EXECUTE_SECRET_ID", exe_secret)
    assert secrets.resolve(ref, "execute")["password"] == EXE_PW
    # ...and the execution identity cannot read monitoring paths it has no business with.
    with pytest.raises(SecretError):
        vault._read(vault._client("execute"), "x", "bcservice/db/orders/monitor", "secret")


def test_expired_login_is_renewed_once(vault_env, stored, bao_root, monkeypatch):
    role, secret_id = make_approle(bao_root, "bc-renew", MONITOR_POLICY)
    monkeypatch.delenv("BC_VAULT_TOKEN")
    monkeypatch.setenv("BC_VAULT_ROLE_ID", role)
    monkeypatch.setenv("BC_VAULT_SECRET_ID", secret_id)
    vault.forget_logins()
    ref = "vault:bcservice/db/orders#purpose"
    assert secrets.resolve(ref, "monitor")["username"] == "bc_monitor"
    bao_root.auth.token.revoke(vault._client("default").token)
    assert secrets.resolve(ref, "monitor")["username"] == "bc_monitor"


def test_wrong_approle_secret_id(vault_env, stored, bao_root, monkeypatch):
    role, _ = make_approle(bao_root, "bc-wrong", MONITOR_POLICY)
    monkeypatch.delenv("BC_VAULT_TOKEN")
    monkeypatch.setenv("BC_VAULT_ROLE_ID", role)
    monkeypatch.setenv("BC_VAULT_SECRET_ID", "00000000-not-the-secret-id")
    vault.forget_logins()
    with pytest.raises(SecretError) as info:
        secrets.resolve("vault:bcservice/db/orders#purpose", "monitor")
    assert "AppRole" in str(info.value)
    _assert_clean(str(info.value), "00000000-not-the-secret-id")


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("vault:bcservice/../other", "not a valid KV path"),
        ("vault:bcservice//x", "not a valid KV path"),
        ("vault:bcservice/x#monitor", "only suffix understood"),
        ("vault:#purpose", "not a valid KV path"),
    ],
)
def test_odd_paths_are_refused_before_asking_vault(vault_env, ref, expected):
    with pytest.raises(SecretError, match=expected):
        secrets.resolve(ref, "monitor")


def test_a_per_purpose_path_must_hold_one_account(vault_env, stored):
    stored.create_or_update_secret(
        path="bcservice/db/mixed/monitor",
        secret={"monitor": {"password": MON_PW}, "execute": {"password": EXE_PW}},
    )
    with pytest.raises(SecretError, match="one flat account"):
        secrets.resolve("vault:bcservice/db/mixed#purpose", "monitor")


def test_unconfigured_and_unreachable_vault(vault_env, settings):
    settings.BC_VAULT_ADDR = ""
    with pytest.raises(SecretError, match="BC_VAULT_ADDR"):
        secrets.resolve("vault:bcservice/db/orders#purpose", "monitor")
    settings.BC_VAULT_ADDR = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.BC_VAULT_TIMEOUT = 1
    vault.forget_logins()
    with pytest.raises(SecretError, match="unreachable"):
        secrets.resolve("vault:bcservice/db/orders#purpose", "monitor")


def test_missing_credentials_in_the_environment(vault_env, monkeypatch):
    monkeypatch.delenv("BC_VAULT_TOKEN")
    vault.forget_logins()
    with pytest.raises(SecretError, match="no Vault credentials"):
        secrets.resolve("vault:bcservice/db/orders#purpose", "monitor")
