"""The canonical encoding and hash of an audit event; shared by the service and the verifiers.

Kept free of Django imports so that an exported file can be verified without the service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

GENESIS_HASH = "0" * 64

# The fields covered by the hash, in a fixed order; adding one is a chain format change.
HASHED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_name",
    "before",
    "after",
    "request_id",
    "context",
    "prev_hash",
)


def canonical(event: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for an event: sorted keys, no whitespace, UTF-8."""
    body = {name: event.get(name) for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def format_time(value: Any) -> str:
    """Times enter the hash as UTC ISO 8601 with microseconds, whatever the database returns."""
    from datetime import UTC

    return value.astimezone(UTC).isoformat(timespec="microseconds")
