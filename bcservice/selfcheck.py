"""The service's own readiness (spec/ha-dr-requirements.md §3, §5): backup age, replication lag
of its own PostgreSQL store, and audit chain health. Used by ``manage.py bc_selfcheck``."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

MAX_BACKUP_AGE_HOURS = 24
MAX_STORE_LAG_SECONDS = 5  # the spec's TransactionLag <= 5 s before failback


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    value: Any = None


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def backup_age(backup_dir: Path, now: float | None = None) -> Check:
    now = now or time.time()
    files = [p for p in backup_dir.glob("*") if p.is_file()] if backup_dir.is_dir() else []
    if not files:
        return Check("backup_age", False, f"no backup found in {backup_dir}")
    newest = max(files, key=lambda p: p.stat().st_mtime)
    hours = (now - newest.stat().st_mtime) / 3600
    ok = hours <= MAX_BACKUP_AGE_HOURS
    detail = f"newest backup {newest.name} is {hours:.1f} h old (limit {MAX_BACKUP_AGE_HOURS} h)"
    return Check("backup_age", ok, detail, round(hours, 3))


def store_replication() -> Check:
    if connection.vendor != "postgresql":
        return Check(
            "store_replication", True, "embedded SQLite store: no replica (demo/default mode)"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        (in_recovery,) = cursor.fetchone()
        if in_recovery:
            return Check("store_replication", False, "connected to a standby: writes impossible")
        cursor.execute(
            "SELECT application_name, state, "
            "COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) FROM pg_stat_replication"
        )
        rows = cursor.fetchall()
    if not rows:
        return Check("store_replication", False, "the store has no streaming standby")
    worst = max(float(r[2]) for r in rows)
    streaming = [r[0] for r in rows if r[1] == "streaming"]
    ok = bool(streaming) and worst <= MAX_STORE_LAG_SECONDS
    detail = f"{len(streaming)} standby(s) streaming, worst replay lag {worst:.2f} s"
    return Check("store_replication", ok, detail, worst)


def audit_chain() -> Check:
    from audit.selectors import verify_chain

    result = verify_chain()
    if result.ok:
        return Check("audit_chain", True, f"{result.events_checked} events verified")
    return Check(
        "audit_chain",
        False,
        f"broken at sequence {result.first_bad_seq}: {result.reason}",
        result.first_bad_seq,
    )


def run() -> Report:
    backup_dir = Path(getattr(settings, "BC_BACKUP_DIR", settings.BASE_DIR / "var" / "backups"))
    return Report([backup_age(backup_dir), store_replication(), audit_chain()])
