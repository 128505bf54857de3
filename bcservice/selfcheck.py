"""The service's own readiness (spec/ha-dr-requirements.md §3, §5): backup age, replication lag
of its own PostgreSQL store, and audit chain health (the stored chain and the signed checkpoints
exported outside the database). Used by ``manage.py bc_selfcheck``.

Thresholds come from settings (``BC_SELFCHECK_MAX_BACKUP_AGE_HOURS``, default 24;
``BC_SELFCHECK_MAX_STORE_LAG_SECONDS``, default 5; ``BC_SELFCHECK_REQUIRE_STANDBY``, default on)
and can be overridden per run. An unreachable store is a failed check, never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

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


@dataclass(frozen=True)
class Thresholds:
    max_backup_age_hours: float
    max_store_lag_seconds: float
    require_standby: bool

    @classmethod
    def from_settings(cls, **overrides: Any) -> Thresholds:
        values = {
            "max_backup_age_hours": float(
                getattr(settings, "BC_SELFCHECK_MAX_BACKUP_AGE_HOURS", MAX_BACKUP_AGE_HOURS)
            ),
            "max_store_lag_seconds": float(
                getattr(settings, "BC_SELFCHECK_MAX_STORE_LAG_SECONDS", MAX_STORE_LAG_SECONDS)
            ),
            "require_standby": bool(getattr(settings, "BC_SELFCHECK_REQUIRE_STANDBY", True)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _backups(backup_dir: Path) -> list[tuple[Path, float]]:
    """Finished backups: non-empty files (not ``*.partial``, which backup.sh renames when done)
    and pg_basebackup directories (they hold ``backup_manifest``, written last)."""
    if not backup_dir.is_dir():
        return []
    found = []
    for p in backup_dir.iterdir():
        if p.is_file() and not p.name.endswith(".partial") and p.stat().st_size > 0:
            found.append((p, p.stat().st_mtime))
        elif p.is_dir() and (p / "backup_manifest").is_file():
            found.append((p, (p / "backup_manifest").stat().st_mtime))
    return found


def backup_age(
    backup_dir: Path, now: float | None = None, max_hours: float = MAX_BACKUP_AGE_HOURS
) -> Check:
    now = now or time.time()
    backups = _backups(backup_dir)
    if not backups:
        return Check("backup_age", False, f"no finished backup found in {backup_dir}")
    newest, mtime = max(backups, key=lambda item: item[1])
    hours = (now - mtime) / 3600
    ok = hours <= max_hours
    detail = f"newest backup {newest.name} is {hours:.1f} h old (limit {max_hours:g} h)"
    return Check("backup_age", ok, detail, round(hours, 3))


_REPLICATION_SQL = (
    "SELECT application_name, state, COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float, "
    "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint "
    "FROM pg_stat_replication"
)


def store_replication(
    conn: Any = None,
    *,
    max_lag: float = MAX_STORE_LAG_SECONDS,
    require_standby: bool = True,
) -> Check:
    """Streaming standbys of the service's own store, as its primary sees them.

    ``conn`` is a DB-API connection to check (default: Django's). Without a standby the check
    says so plainly; it fails unless ``require_standby`` is off (a single-node deployment).
    """
    if conn is None and connection.vendor != "postgresql":
        return Check(
            "store_replication", True, "embedded SQLite store: no replica (demo/default mode)"
        )
    conn = conn if conn is not None else connection
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            (in_recovery,) = cursor.fetchone()
            if in_recovery:
                return Check(
                    "store_replication", False, "connected to a standby: writes impossible"
                )
            cursor.execute(_REPLICATION_SQL)
            rows = cursor.fetchall()
    except (DatabaseError, OSError) as exc:
        return Check("store_replication", False, f"store unreachable: {type(exc).__name__}")
    except Exception as exc:  # a non-Django driver (psycopg used directly) raises its own
        if type(exc).__module__.startswith("psycopg"):
            return Check("store_replication", False, f"store unreachable: {type(exc).__name__}")
        raise
    if not rows:
        detail = "no standby: the store has no streaming standby (pg_stat_replication is empty)"
        return Check("store_replication", not require_standby, detail, None)
    worst = max(float(r[2]) for r in rows)
    behind = max(int(r[3]) for r in rows)
    streaming = [r[0] for r in rows if r[1] == "streaming"]
    ok = bool(streaming) and worst <= max_lag
    detail = (
        f"{len(streaming)} of {len(rows)} standby(s) streaming, worst replay lag {worst:.2f} s "
        f"(limit {max_lag:g} s), {behind} bytes of WAL not yet replayed"
    )
    return Check("store_replication", ok, detail, worst)


def audit_chain(use_checkpoints: bool = True) -> Check:
    """The stored chain, and against the signed checkpoints exported outside the database."""
    from audit.verification import verify_all

    try:
        result = verify_all(use_checkpoints=use_checkpoints)
    except DatabaseError as exc:
        return Check("audit_chain", False, f"store unreachable: {type(exc).__name__}")
    chain, checkpoints = result.chain, result.checkpoints
    if result.ok:
        latest = (
            f", latest signed checkpoint seq {checkpoints.latest_seq}"
            if checkpoints.latest_seq is not None
            else ", no checkpoints yet"
        )
        return Check("audit_chain", True, f"{chain.events_checked} events verified{latest}")
    if not chain.ok:
        detail = f"broken at sequence {chain.first_bad_seq}: {chain.reason}"
    else:
        detail = "checkpoints: " + "; ".join(checkpoints.problems)
    return Check("audit_chain", False, detail, chain.first_bad_seq)


def backup_dir() -> Path:
    return Path(getattr(settings, "BC_BACKUP_DIR", Path(settings.BC_VAR_DIR) / "backups"))


def run(thresholds: Thresholds | None = None) -> Report:
    limits = thresholds or Thresholds.from_settings()
    return Report(
        [
            backup_age(backup_dir(), max_hours=limits.max_backup_age_hours),
            store_replication(
                max_lag=limits.max_store_lag_seconds, require_standby=limits.require_standby
            ),
            audit_chain(),
        ]
    )
