"""Secret resolution: a resource's secret reference -> credentials, at the moment they are needed.

One resolver for every caller. A reference names where credentials live, never the credentials:

- ``env:NAME``    JSON in the environment variable NAME;
- ``file:name``   the entry ``name`` of the JSON file ``settings.BC_SECRETS_FILE`` (demo/lab);
- ``lab/postgres`` (a bare path) the same as ``file:lab/postgres``;
- ``vault:...``   HashiCorp Vault / OpenBao; arrives with the identity/secrets issue.

An entry is either ``{"monitor": {...}, "execute": {...}}`` (one account per purpose) or a flat
``{"username": ..., "password": ...}`` used for both (acceptable for a demo only). Monitoring asks
for purpose ``"monitor"`` only (invariant 6); ``"execute"`` is fetched by a step when it runs.

Errors are ``SecretError`` whose text names the reference and the problem, never a value. The
``sanitize`` helper scrubs known secret values and secret-looking keys from anything about to be
stored, logged or returned (invariant 7).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

PURPOSES = ("monitor", "execute")
REDACTED = "***"

Backend = Callable[[str, str], Mapping[str, Any]]


class SecretError(Exception):
    """A secret reference could not be resolved. The message never contains a secret."""


def _entry_for(container: Any, ref: str, purpose: str) -> dict[str, str]:
    """Pick the purpose's credentials out of an entry and check their shape."""
    if not isinstance(container, dict):
        raise SecretError(f"secret {ref!r} is not a JSON object")
    if any(key in container for key in PURPOSES):
        creds = container.get(purpose)
        if creds is None:
            raise SecretError(f"secret {ref!r} holds no {purpose!r} credentials")
    else:
        creds = container  # flat: one account for every purpose
    if not isinstance(creds, dict) or not creds:
        raise SecretError(f"secret {ref!r}: {purpose!r} credentials must be a non-empty object")
    out: dict[str, str] = {}
    for key, value in creds.items():
        if isinstance(value, dict | list):
            raise SecretError(f"secret {ref!r}: value of {key!r} must be a string or number")
        out[str(key)] = "" if value is None else str(value)
    return out


def _env_backend(name: str, purpose: str) -> Mapping[str, str]:
    ref = f"env:{name}"
    raw = os.environ.get(name)
    if raw is None:
        raise SecretError(f"secret {ref!r}: environment variable {name} is not set")
    try:
        data = json.loads(raw)
    except ValueError:
        # Do not echo the text: it is the secret.
        raise SecretError(
            f"secret {ref!r}: environment variable {name} is not valid JSON"
        ) from None
    return _entry_for(data, ref, purpose)


_file_cache: dict[str, tuple[float, int, dict[str, Any]]] = {}
_file_lock = threading.Lock()


def _load_file(path: Path) -> dict[str, Any]:
    """The secrets file, re-read only when it changes (collection resolves many times a second)."""
    try:
        stat = path.stat()
    except OSError:
        raise SecretError(f"secrets file {str(path)!r} does not exist or is unreadable") from None
    key = str(path)
    with _file_lock:
        cached = _file_cache.get(key)
        if cached and cached[0] == stat.st_mtime and cached[1] == stat.st_size:
            return cached[2]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise SecretError(f"secrets file {str(path)!r} is not readable JSON") from None
    if not isinstance(data, dict):
        raise SecretError(f"secrets file {str(path)!r} must hold a JSON object of entries")
    with _file_lock:
        _file_cache[key] = (stat.st_mtime, stat.st_size, data)
    return data


def _file_backend(name: str, purpose: str) -> Mapping[str, str]:
    data = _load_file(Path(settings.BC_SECRETS_FILE))
    if name not in data:
        raise SecretError(f"secret {name!r} is not in the secrets file")
    return _entry_for(data[name], name, purpose)


def _vault_backend(path: str, purpose: str) -> Mapping[str, str]:
    raise SecretError(
        f"secret 'vault:{path}': the Vault backend is not available yet; it arrives with the "
        "identity/secrets issue. Use env:NAME or a secrets-file entry meanwhile."
    )


# scheme -> backend(reference without scheme, purpose). Add a backend with register_backend().
BACKENDS: dict[str, Backend] = {
    "env": _env_backend,
    "file": _file_backend,
    "vault": _vault_backend,
}
DEFAULT_SCHEME = "file"  # bare references such as "lab/postgres"


def register_backend(scheme: str, backend: Backend) -> None:
    """Install or replace the backend for ``scheme:`` references (e.g. the Vault backend)."""
    BACKENDS[scheme] = backend


def resolve(secret_ref: str, purpose: str) -> Mapping[str, str]:
    """Credentials for ``purpose`` ("monitor" or "execute") behind ``secret_ref``."""
    if purpose not in PURPOSES:
        raise SecretError(f"unknown credentials purpose {purpose!r}; use one of {PURPOSES}")
    ref = (secret_ref or "").strip()
    if not ref:
        raise SecretError("the resource has no secret reference")
    scheme, sep, rest = ref.partition(":")
    if not sep:
        scheme, rest = DEFAULT_SCHEME, ref
    backend = BACKENDS.get(scheme)
    if backend is None:
        raise SecretError(f"unknown secret backend {scheme!r} in reference {ref!r}")
    if not rest:
        raise SecretError(f"secret reference {ref!r} names nothing")
    return dict(backend(rest, purpose))


# --- sanitizing -------------------------------------------------------------------------------

_SECRET_KEY_RE = re.compile(
    r"password|passwd|^pass$|pwd|secret|token|private_?key|api_?key|credential|authorization",
    re.IGNORECASE,
)
# user:password@ in URIs and key=value pairs in connection strings (PWD=...; password=...)
_URI_PASSWORD_RE = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)
_KV_PASSWORD_RE = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token)\s*=\s*)(?P<val>'[^']*'|\"[^\"]*\"|[^;\s]+)",
    re.IGNORECASE,
)
_MIN_SCRUB_LEN = 4  # shorter values (e.g. "1") would shred ordinary text


def _scrub_text(text: str, values: Iterable[str]) -> str:
    for value in values:
        if len(value) >= _MIN_SCRUB_LEN and value in text:
            text = text.replace(value, REDACTED)
    text = _URI_PASSWORD_RE.sub(lambda m: f"{m.group('pre')}{REDACTED}@", text)
    return _KV_PASSWORD_RE.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


def sanitize(value: Any, secret_values: Iterable[str] = ()) -> Any:
    """A copy of ``value`` safe to store, log or show: known secret values and passwords in
    connection strings replaced, keys that look like secrets redacted, non-JSON types as text."""
    values = sorted({v for v in secret_values if v}, key=len, reverse=True)

    def walk(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {
                str(k): (REDACTED if _SECRET_KEY_RE.search(str(k)) else walk(v))
                for k, v in item.items()
            }
        if isinstance(item, list | tuple | set):
            return [walk(v) for v in item]
        if isinstance(item, str):
            return _scrub_text(item, values)
        if item is None or isinstance(item, bool | int | float):
            return item
        if isinstance(item, datetime | date):
            return item.isoformat()
        return _scrub_text(str(item), values)

    return walk(value)
