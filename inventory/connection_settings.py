"""Per-platform connection settings: which keys a resource may hold, their types and defaults.

Pure data and validation, no I/O, so both the admin/API (validation) and the connectors (reading)
use the same definition. Connection settings never hold secrets: passwords, tokens and keys live
behind the resource's secret reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Key:
    type: type
    required: bool = False
    default: Any = None
    help: str = ""


def _port(default: int) -> Key:
    return Key(int, default=default)


SCHEMAS: dict[str, dict[str, Key]] = {
    "postgres": {
        "primary_host": Key(str, required=True, help="host of the node at the primary site"),
        "primary_port": _port(5432),
        "dr_host": Key(str, required=True, help="host of the node at the DR site"),
        "dr_port": _port(5432),
        "dbname": Key(str, default="postgres"),
        "sslmode": Key(str, default="prefer"),
        "slot_name": Key(str, default="", help="replication slot used by the DR standby"),
        "host_actions": Key(dict, default=None, help="command templates per host action"),
    },
    "mongodb": {
        "hosts": Key(list, required=True, help="seed list, host:port strings"),
        "replica_set": Key(str, required=True),
        "primary_member": Key(
            str, required=True, help="host:port of the member at the primary site"
        ),
        "dr_member": Key(str, required=True, help="host:port of the member at the DR site"),
        "auth_source": Key(str, default="admin"),
        "tls": Key(bool, default=False),
    },
    "mssql": {
        "primary_server": Key(str, required=True),
        "primary_port": _port(1433),
        "dr_server": Key(str, required=True),
        "dr_port": _port(1433),
        "availability_group": Key(str, required=True),
        "database": Key(str, default="master"),
        "driver": Key(str, default="FreeTDS"),
        "primary_replica": Key(str, default="", help="replica_server_name at the primary site"),
        "dr_replica": Key(str, default="", help="replica_server_name at the DR site"),
        "encrypt": Key(bool, default=False),
    },
    "snowflake": {
        "primary_account": Key(str, required=True, help="organization-account of the primary"),
        "dr_account": Key(str, required=True),
        "failover_group": Key(str, required=True),
        "database": Key(str, default=""),
        "warehouse": Key(str, default=""),
        "role": Key(str, default=""),
    },
}

# Key names that look like secrets are refused outright, whatever the platform.
_SECRET_HINTS = ("password", "passwd", "secret", "token", "private_key", "apikey", "api_key")


def _unstorable(value: Any) -> bool:
    """True when a string anywhere in ``value`` (keys included) cannot be stored: PostgreSQL's
    jsonb refuses NUL (\\u0000) and UTF-8 cannot encode an unpaired surrogate (both were an
    HTTP 500 at save time)."""
    if isinstance(value, str):
        return "\x00" in value or (not value.isascii() and _has_surrogate(value))
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate(platform: str, settings: Any) -> dict[str, list[str]]:
    """Return field errors as {key: [messages]}; empty when the settings are acceptable."""
    errors: dict[str, list[str]] = {}
    schema = SCHEMAS.get(platform)
    if schema is None:
        return {"platform": [f"Unknown platform {platform!r}."]}
    if not isinstance(settings, dict):
        return {"connection": ["Connection settings must be a JSON object."]}
    if _unstorable(settings):
        # Not echoing the key: a message holding an unpaired surrogate cannot be rendered.
        return {"connection": ["Must not contain NUL or unpaired surrogate characters."]}
    for key, value in settings.items():
        if any(hint in key.lower() for hint in _SECRET_HINTS):
            errors.setdefault(key, []).append(
                "Secrets must not be stored in connection settings; use the secret reference."
            )
            continue
        if key not in schema:
            allowed = ", ".join(sorted(schema))
            errors.setdefault(key, []).append(f"Unknown key for {platform}. Allowed: {allowed}.")
            continue
        spec = schema[key]
        if value is None and not spec.required:
            continue
        # bool is an int in Python; refuse True where a port is expected.
        ok = isinstance(value, spec.type) and not (spec.type is int and isinstance(value, bool))
        if not ok:
            errors.setdefault(key, []).append(f"Must be of type {spec.type.__name__}.")
        elif spec.type is int and not 0 < value < 65536 and key.endswith("port"):
            errors.setdefault(key, []).append("Port must be between 1 and 65535.")
        elif spec.required and spec.type is str and not value.strip():
            errors.setdefault(key, []).append("This key is required.")
    for key, spec in schema.items():
        if spec.required and key not in settings:
            errors.setdefault(key, []).append("This key is required.")
    return errors


def with_defaults(platform: str, settings: dict[str, Any]) -> dict[str, Any]:
    schema = SCHEMAS.get(platform, {})
    merged = {key: spec.default for key, spec in schema.items() if spec.default is not None}
    merged.update(settings or {})
    return merged
