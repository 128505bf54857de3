"""Audit settings: read from Django settings when defined there, else the environment.

Every value can be set either way (``BC_AUDIT_*`` in bcservice/settings.py or the environment),
so the embedded demo needs none of them. Read at call time, so tests can override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings


def _get(name: str, default: Any = None) -> Any:
    value = getattr(settings, name, None)
    if value is None or value == "":
        value = os.environ.get(name, "")
    return default if value is None or value == "" else value


def _int(name: str, default: int) -> int:
    try:
        return int(_get(name, default))
    except (TypeError, ValueError):
        return default


def var_dir() -> Path:
    return Path(settings.BC_VAR_DIR)


def checkpoint_dir() -> Path:
    """The append-only directory of exported checkpoints (one JSON file per checkpoint)."""
    return Path(_get("BC_AUDIT_CHECKPOINT_DIR", var_dir() / "checkpoints"))


def signing_key_file() -> Path:
    """The Ed25519 private key: only the worker that writes checkpoints needs it."""
    return Path(_get("BC_AUDIT_SIGNING_KEY_FILE", var_dir() / "audit-signing-key.pem"))


def public_key_file() -> Path:
    """Public key(s) that checkpoints are verified with; several PEM blocks allow rotation."""
    return Path(_get("BC_AUDIT_PUBLIC_KEY_FILE", var_dir() / "audit-signing-key.pub.pem"))


def signing_key_is_default() -> bool:
    """A missing key is created on first use only where nobody configured one (the demo)."""
    return not _get("BC_AUDIT_SIGNING_KEY_FILE", "")


def checkpoint_every() -> int:
    """Enqueue a checkpoint each time this many events have been appended (0: never)."""
    return max(0, _int("BC_AUDIT_CHECKPOINT_EVERY", 1000))


def checkpoint_minutes() -> int:
    """How often the scheduled checkpoint job runs."""
    return max(1, _int("BC_AUDIT_CHECKPOINT_MINUTES", 1))


def verify_workers() -> int:
    """Processes used to verify a long chain on PostgreSQL (default: the CPU count, up to 8)."""
    return max(1, _int("BC_AUDIT_VERIFY_WORKERS", min(os.cpu_count() or 1, 8)))


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str
    retention_days: int
    lock_mode: str
    # Only the checkpoints this recent are read back when verifying; the newest one already
    # catches any rewrite below it, older ones narrow down where it happened.
    verify_latest: int
    access_key_id: str | None
    secret_access_key: str | None


def s3_config() -> S3Config | None:
    """S3-compatible object storage with Object Lock, when BC_AUDIT_S3_BUCKET is set.

    Credentials come from BC_AUDIT_S3_ACCESS_KEY_ID / BC_AUDIT_S3_SECRET_ACCESS_KEY when set,
    otherwise from boto3's usual chain (AWS_* environment, instance role, config files).
    """
    bucket = _get("BC_AUDIT_S3_BUCKET", "")
    if not bucket:
        return None
    prefix = str(_get("BC_AUDIT_S3_PREFIX", "bcservice/audit-checkpoints/"))
    return S3Config(
        bucket=str(bucket),
        prefix=prefix if prefix.endswith("/") or not prefix else prefix + "/",
        endpoint_url=_get("BC_AUDIT_S3_ENDPOINT_URL", None),
        region=str(_get("BC_AUDIT_S3_REGION", "us-east-1")),
        retention_days=max(1, _int("BC_AUDIT_S3_RETENTION_DAYS", 2557)),
        lock_mode=str(_get("BC_AUDIT_S3_LOCK_MODE", "COMPLIANCE")).upper(),
        verify_latest=max(1, _int("BC_AUDIT_S3_VERIFY_LATEST", 50)),
        access_key_id=_get("BC_AUDIT_S3_ACCESS_KEY_ID", None),
        secret_access_key=_get("BC_AUDIT_S3_SECRET_ACCESS_KEY", None),
    )
