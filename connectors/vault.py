"""The ``vault:`` secret backend: HashiCorp Vault or OpenBao, KV version 2, through hvac.

References (see docs/operations/vault.md):

- ``vault:bcservice/db/orders#purpose`` reads ``bcservice/db/orders/monitor`` for monitoring and
  ``bcservice/db/orders/execute`` for execution, each a flat ``{"username": ..., "password": ...}``.
  This is the recommended layout: Vault policies can then give the monitoring identity the
  ``monitor`` paths only (invariant 6).
- ``vault:bcservice/db/orders`` reads one secret holding ``{"monitor": {...}, "execute": {...}}``
  (or one flat account for every purpose, acceptable for a demo), like the other backends.

The KV v2 mount is ``settings.BC_VAULT_MOUNT`` (default ``secret``), the server
``settings.BC_VAULT_ADDR``. Authentication comes from the environment, read when logging in and
never copied into settings: ``BC_VAULT_ROLE_ID`` + ``BC_VAULT_SECRET_ID`` (AppRole, preferred) or
``BC_VAULT_TOKEN``. Execution may use its own identity (``BC_VAULT_EXECUTE_ROLE_ID`` +
``BC_VAULT_EXECUTE_SECRET_ID`` or ``BC_VAULT_EXECUTE_TOKEN``) so that the identity used by
monitoring cannot read execution accounts at all.

Only the Vault *login* is kept between calls (a client token per identity, renewed by logging in
again when Vault refuses it). Secret data is read on every call and never cached, so execution
credentials live no longer than the step that asked for them. Every error is a ``SecretError``
whose text names the reference and the problem, never a value or a token.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from connectors.secrets import PURPOSES, SecretError, _entry_for

BY_PURPOSE = "#purpose"  # suffix: one KV path per purpose, <path>/monitor and <path>/execute
DEFAULT_MOUNT = "secret"
DEFAULT_TIMEOUT = 5.0

# Environment variable names per identity: (token, role id, secret id).
_IDENTITY_ENV = {
    "default": ("BC_VAULT_TOKEN", "BC_VAULT_ROLE_ID", "BC_VAULT_SECRET_ID"),
    "execute": ("BC_VAULT_EXECUTE_TOKEN", "BC_VAULT_EXECUTE_ROLE_ID", "BC_VAULT_EXECUTE_SECRET_ID"),
}

_clients: dict[tuple[str, str], Any] = {}  # (identity, address) -> logged-in hvac.Client
_clients_lock = threading.Lock()


def _identity_for(purpose: str) -> str:
    """Which login reads a secret for ``purpose``: execution's own when one is configured."""
    if purpose == "execute":
        token, role_id, _ = _IDENTITY_ENV["execute"]
        if os.environ.get(token) or os.environ.get(role_id):
            return "execute"
    return "default"


def _address() -> str:
    addr = (getattr(settings, "BC_VAULT_ADDR", "") or os.environ.get("BC_VAULT_ADDR", "")).strip()
    if not addr:
        raise SecretError("the Vault backend is not configured: set BC_VAULT_ADDR")
    return addr.rstrip("/")


def _new_client(identity: str, addr: str) -> Any:
    """Log in as ``identity``; raises SecretError (never with the token or secret id in it)."""
    import hvac
    from hvac import exceptions as hvac_errors
    from requests import RequestException

    token_var, role_var, secret_var = _IDENTITY_ENV[identity]
    verify: bool | str = getattr(settings, "BC_VAULT_CACERT", "") or True
    client = hvac.Client(
        url=addr,
        verify=verify,
        timeout=float(getattr(settings, "BC_VAULT_TIMEOUT", DEFAULT_TIMEOUT)),
        namespace=getattr(settings, "BC_VAULT_NAMESPACE", "") or None,
    )
    role_id, secret_id = os.environ.get(role_var), os.environ.get(secret_var)
    if role_id:
        mount = getattr(settings, "BC_VAULT_APPROLE_MOUNT", "") or "approle"
        try:
            client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount)
        except (hvac_errors.Unauthorized, hvac_errors.Forbidden, hvac_errors.InvalidRequest):
            raise SecretError(
                f"Vault refused the AppRole login of {role_var} (check the role id and "
                f"{secret_var})"
            ) from None
        except (hvac_errors.VaultError, RequestException) as exc:
            raise SecretError(f"Vault AppRole login failed: {type(exc).__name__}") from None
        return client
    token = os.environ.get(token_var)
    if not token:
        raise SecretError(
            f"no Vault credentials: set {role_var} and {secret_var} (AppRole) or {token_var}"
        )
    client.token = token
    return client


def _client(identity: str, *, fresh: bool = False) -> Any:
    addr = _address()
    key = (identity, addr)
    with _clients_lock:
        if fresh:
            _clients.pop(key, None)
        client = _clients.get(key)
        if client is None:
            client = _new_client(identity, addr)
            _clients[key] = client
        return client


def forget_logins() -> None:
    """Drop cached Vault logins (tests, and after the environment's credentials changed)."""
    with _clients_lock:
        _clients.clear()


def _split(name: str, purpose: str) -> str:
    """The KV path a reference names for ``purpose``; refuses odd paths early and clearly."""
    path, hash_, fragment = name.partition("#")
    if hash_ and f"#{fragment}" != BY_PURPOSE:
        raise SecretError(f"secret 'vault:{name}': the only suffix understood is {BY_PURPOSE!r}")
    path = path.strip().strip("/")
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts):
        raise SecretError(f"secret 'vault:{name}': not a valid KV path")
    return f"{path}/{purpose}" if hash_ else path


class _Refused(SecretError):
    """Vault refused the login's token: worth one new login (it may have expired)."""


def _read(client: Any, ref: str, path: str, mount: str) -> dict[str, Any]:
    from hvac import exceptions as hvac_errors
    from requests import RequestException

    try:
        response = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac_errors.InvalidPath:
        raise SecretError(
            f"secret {ref!r}: nothing at {path!r} in the KV mount {mount!r}"
        ) from None
    except hvac_errors.Forbidden:
        raise _Refused(f"secret {ref!r}: Vault denied reading {path!r} (token or policy)") from None
    except hvac_errors.Unauthorized:
        raise _Refused(f"secret {ref!r}: Vault did not accept the login") from None
    except (hvac_errors.VaultDown, hvac_errors.VaultNotInitialized):
        raise SecretError(f"secret {ref!r}: Vault is sealed or not initialised") from None
    except hvac_errors.VaultError as exc:
        raise SecretError(f"secret {ref!r}: Vault error ({type(exc).__name__})") from None
    except RequestException as exc:
        raise SecretError(f"secret {ref!r}: Vault unreachable ({type(exc).__name__})") from None
    data = ((response or {}).get("data") or {}).get("data")
    if not isinstance(data, dict):
        raise SecretError(f"secret {ref!r}: {path!r} holds no key/value data")
    return data


def read(name: str, purpose: str) -> Mapping[str, str]:
    """The resolver backend for ``vault:<name>`` (see the module docstring)."""
    if purpose not in PURPOSES:
        raise SecretError(f"unknown credentials purpose {purpose!r}")
    ref = f"vault:{name}"
    path = _split(name, purpose)
    mount = (getattr(settings, "BC_VAULT_MOUNT", "") or DEFAULT_MOUNT).strip("/")
    identity = _identity_for(purpose)
    try:
        data = _read(_client(identity), ref, path, mount)
    except _Refused:
        # A client token from an earlier login may have expired: log in once more, then give up.
        try:
            data = _read(_client(identity, fresh=True), ref, path, mount)
        except _Refused as exc:
            raise SecretError(str(exc)) from None
    if name.endswith(BY_PURPOSE) and any(key in data for key in PURPOSES):
        # A per-purpose path holding both accounts defeats the point of separate paths.
        raise SecretError(f"secret {ref!r}: a per-purpose path must hold one flat account")
    return _entry_for(data, ref, purpose)
