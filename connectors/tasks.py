"""django-q2 tasks for monitoring: the collection sweep and history retention.

Thin: bind the worker context, take the sweep's singleton guard, call the service.

django-q2 schedules have one-minute granularity (the cluster's scheduler looks at them about every
30 s), far too coarse for a 15 s collection cycle. So ``run_sweep`` is a loop: it holds the
singleton guard and collects whatever is due, every second, for ``BC_SWEEP_LOOP_SECONDS``
(default 50 s). When it ran to its end it releases the guard and enqueues its own successor, so
collection never pauses between scheduled runs. The once-a-minute ``Schedule`` is only a watchdog
that restarts the chain after the cluster was stopped or a worker died: a run that finds the
guard taken returns at once. See docs/monitoring.md.

The guard: ``pg_try_advisory_lock`` on PostgreSQL (STYLE practice 14); on SQLite (one host by
nature) an exclusive ``flock`` on a file beside the database. Both are released by the operating
system or the server when the holder dies, so a crashed worker never blocks the next one. Two
sweepers running anyway would still be safe: every resource is leased before it is collected,
which is also how ``BC_SWEEP_SLOTS`` (default 1) lets several loops share a large fleet.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from bcservice import request_context
from connectors.collection import Sweeper
from inventory import history

logger = logging.getLogger(__name__)

SWEEP_SCHEDULE = "bc.collection-sweep"
RETENTION_SCHEDULE = "bc.history-retention"
_SWEEP_LOCK_KEY = 0x6263_7377_6565_70  # "bcsweep", for pg_try_advisory_lock


def _lock_file(slot: int) -> Path:
    name = str(settings.DATABASES["default"]["NAME"])
    if name and not name.startswith(("file:", ":memory:")) and Path(name).parent.is_dir():
        return Path(f"{name}.sweep{slot}.lock")
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"bcservice-sweep-{digest}-{slot}.lock"


def _slots() -> int:
    return max(1, int(getattr(settings, "BC_SWEEP_SLOTS", 1)))


@contextmanager
def sweep_guard(slot: int = 0) -> Iterator[bool]:
    """Yield True when this process holds sweep slot ``slot`` now, False when another does."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_SWEEP_LOCK_KEY + slot])
            got = bool(cursor.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [_SWEEP_LOCK_KEY + slot])
        return
    fd = os.open(_lock_file(slot), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _enqueue_sweep() -> None:
    from django_q.tasks import async_task

    async_task("connectors.tasks.run_sweep", group=SWEEP_SCHEDULE)


def run_sweep(loop_seconds: float | None = None, chain: bool = True) -> dict[str, Any]:
    """The collection loop (see the module docstring). Returns a small report for the task log.

    With ``BC_SWEEP_SLOTS`` > 1, up to that many loops run at once (in different worker
    processes, on any host); leases split the due resources between them.
    """
    if loop_seconds is None:
        loop_seconds = float(getattr(settings, "BC_SWEEP_LOOP_SECONDS", 50))
    with request_context.bind("worker"):
        for slot in range(_slots()):
            with sweep_guard(slot) as mine:
                if not mine:
                    continue
                if chain and slot + 1 < _slots():
                    _enqueue_sweep()  # fills the next slot, if it is free
                with Sweeper() as sweeper:
                    report = sweeper.run_until(time.monotonic() + loop_seconds)
            if chain:
                # After the slot is released, so the successor can take it.
                _enqueue_sweep()
            return {
                "ran": True,
                "slot": slot,
                "collected": report.collected,
                "changed": report.changed,
            }
    return {"ran": False, "reason": "every sweep slot is taken"}


def run_retention() -> dict[str, int]:
    """Roll raw history older than BC_HISTORY_RAW_HOURS into 5-minute buckets and prune."""
    with request_context.bind("worker"):
        totals = history.roll_up_history()
    logger.info("history retention: %s", totals)
    return totals


def ensure_schedules(using: str = "default", **kwargs: Any) -> None:
    """Create or repair the django-q2 schedules (runs after every migrate)."""
    from django_q.models import Schedule

    schedules = Schedule.objects.using(using)
    schedules.update_or_create(
        name=SWEEP_SCHEDULE,
        defaults={
            "func": "connectors.tasks.run_sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    schedules.update_or_create(
        name=RETENTION_SCHEDULE,
        defaults={
            "func": "connectors.tasks.run_retention",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )
