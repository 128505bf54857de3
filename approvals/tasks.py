"""django-q2 tasks of the approvals app: thin, they call services.

``expire_requests`` and ``run_schedules`` run every minute (their django-q2 Schedule rows are
created on post_migrate). On
PostgreSQL it takes a non-blocking advisory lock so that two workers never sweep at once; the
per-request row locks would keep them correct anyway, this just saves the duplicate work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from django.db import connection

from approvals import services
from bcservice import request_context

logger = logging.getLogger(__name__)

_SWEEP_LOCK_KEY = 0x6263_6170_7072_7631  # "bcapprv1": only this sweep takes it
_SCHEDULES_LOCK_KEY = 0x6263_7363_6865_6431  # "bcsched1": only the schedule job takes it


@contextmanager
def _singleton(key: int = _SWEEP_LOCK_KEY) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def expire_requests() -> dict[str, int]:
    """Expire overdue waiting requests, then re-bind those whose policy or scope changed."""
    # A worker binds its own context; the CLI command has already bound "cli".
    unbound = request_context.current().source == "system"
    with request_context.bind("worker") if unbound else nullcontext(), _singleton() as got:
        if not got:
            logger.info("approval sweep already running elsewhere; skipped")
            return {"refreshed": 0, "expired": 0, "skipped": 1}
        # Expire first: re-binding restarts the validity window, which must not rescue an
        # overdue request.
        expired = services.requests_expire_due()
        refreshed = services.requests_refresh_all(actor="worker")
        if refreshed or expired:
            logger.info("approval sweep", extra={"refreshed": refreshed, "expired": expired})
        return {"refreshed": refreshed, "expired": expired, "skipped": 0}


def run_schedules() -> dict[str, int]:
    """Create the requests of due schedule occurrences; record the missed ones.

    The advisory lock only saves duplicate work: exactly-once per occurrence is the database's
    unique (schedule, planned_at) constraint (see approvals.services.schedule_runs).
    """
    unbound = request_context.current().source == "system"
    with request_context.bind("worker") if unbound else nullcontext():
        with _singleton(_SCHEDULES_LOCK_KEY) as got:
            if not got:
                logger.info("schedule job already running elsewhere; skipped")
                return {"requested": 0, "missed": 0, "failed": 0, "duplicates": 0, "skipped": 1}
            counts = services.schedules_run_due()
        if counts["requested"] or counts["missed"] or counts["failed"]:
            logger.info("schedule job", extra=counts)
        return {**counts, "skipped": 0}
