"""Audit test fixtures: checkpoint storage and keys in a temporary directory, tamper helpers.

Every audit test gets its own checkpoint directory and key pair, so checkpoints a developer's
demo wrote to var/ never leak in, and no S3 bucket from the environment is used by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from audit import services
from audit.chain import event_hash, format_time
from audit.models import AuditEvent
from audit.signing import generate_key_pair


@pytest.fixture(autouse=True)
def audit_storage(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BC_AUDIT_S3_BUCKET", "BC_AUDIT_CHECKPOINT_EVERY"):
        monkeypatch.delenv(name, raising=False)
    settings.BC_AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    settings.BC_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "keys" / "signing.pem")
    settings.BC_AUDIT_PUBLIC_KEY_FILE = str(tmp_path / "keys" / "signing.pub.pem")
    settings.BC_AUDIT_S3_BUCKET = ""
    # Parallel verification is exercised on purpose where it matters, not in every test.
    settings.BC_AUDIT_VERIFY_WORKERS = 1
    return tmp_path


@pytest.fixture
def signing_keys(settings: Any) -> tuple[Path, Path]:
    private = Path(settings.BC_AUDIT_SIGNING_KEY_FILE)
    public = Path(settings.BC_AUDIT_PUBLIC_KEY_FILE)
    generate_key_pair(private, public)
    return private, public


@pytest.fixture
def append() -> Callable[..., None]:
    def make(n: int, prefix: str = "test", **fields: Any) -> None:
        for i in range(n):
            services.record(
                action=f"{prefix}.event", object_type="x", object_id=i, after={"i": i}, **fields
            )

    return make


class Tamper:
    """Raw SQL that the append-only triggers would refuse, with the triggers out of the way."""

    def __init__(self) -> None:
        self.disabled = False

    def _disable(self, cursor: Any) -> None:
        if self.disabled:
            return
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
            cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        self.disabled = True

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with connection.cursor() as cursor:
            self._disable(cursor)
            cursor.execute(sql, params or [])

    def rewrite(self, seq: int, **changes: Any) -> None:
        """Change event ``seq`` and recompute its hash and every later one: a careful forger."""
        rows = list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq").values())
        prev_hash = rows[0]["prev_hash"]
        for row in rows:
            if row["seq"] == seq:
                row.update(changes)
            row["prev_hash"] = prev_hash
            body = {**row, "at": format_time(row["at"])}
            row["hash"] = event_hash(body)
            prev_hash = row["hash"]
        # Hashes are unique: move them out of the way before writing the new ones.
        self.execute("UPDATE audit_auditevent SET hash = 'x' || seq WHERE seq >= %s", [seq])
        for row in rows:
            self.execute(
                "UPDATE audit_auditevent SET object_name = %s, prev_hash = %s, hash = %s "
                "WHERE seq = %s",
                [row["object_name"], row["prev_hash"], row["hash"], row["seq"]],
            )


@pytest.fixture
def tamper() -> Iterator[Tamper]:
    # The test's transaction is rolled back afterwards, and the triggers with it.
    yield Tamper()
