"""JSON-safe snapshots of model instances for the before/after of audit events."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

# Field names that must never be copied into the audit log, whatever model they are on.
_REDACTED = {"password", "key", "token", "secret"}


def _parse_float(text: str) -> float | int:
    """A float as it will come back out of PostgreSQL's jsonb, which stores numbers as numeric.

    jsonb prints ``1e+20`` as ``100000000000000000000`` (read back as an int) and has no
    negative zero; without this an event holding such a number would fail verification on
    PostgreSQL although nobody touched it.
    """
    value = float(text)
    if value == 0:
        return 0.0
    rendered = repr(value)
    if "e+" in rendered:
        return int(Decimal(rendered))
    return value


def _parse_constant(text: str) -> str:
    # NaN and Infinity are not JSON (PostgreSQL refuses them); keep them readable as text.
    return text


def clean_text(value: str) -> str:
    """PostgreSQL cannot store NUL in text or jsonb: replace it rather than lose the event."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _clean(v) for k, v in value.items()}
    return value


def json_safe(value: Any) -> Any:
    """Round-trip through JSON so the stored value is exactly what the hash was computed over,
    and what every supported database gives back."""
    text = json.dumps(value, cls=DjangoJSONEncoder)
    loaded = json.loads(text, parse_float=_parse_float, parse_constant=_parse_constant)
    return _clean(loaded) if "\\u0000" in text else loaded


def snapshot(instance: models.Model | None) -> dict[str, Any] | None:
    if instance is None:
        return None
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.name in _REDACTED:
            continue
        data[field.attname] = field.value_from_object(instance)
    return json_safe(data)


# Bookkeeping fields that change on every save and say nothing about the change itself.
_NOISE = frozenset({"updated_at"})


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Names of the fields that differ (ignoring timestamps); used to skip no-op updates."""
    before, after = before or {}, after or {}
    keys = (set(before) | set(after)) - _NOISE
    return sorted(k for k in keys if before.get(k) != after.get(k))
