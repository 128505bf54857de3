"""django-q2 tasks of the audit app: the checkpoint job, and how the service asks for it.

``write_checkpoint`` runs on a schedule (the Schedule row is ensured after every migrate) and,
every ``BC_AUDIT_CHECKPOINT_EVERY`` events, is enqueued by ``audit.services.record`` once the
appending transaction commits. Either way it runs in the worker, the only process that holds the
signing key. On PostgreSQL a non-blocking advisory lock keeps two workers from signing at once
(the checkpoint table's primary key would refuse the second anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from django.db import connection

from bcservice import request_context

logger = logging.getLogger(__name__)

CHECKPOINT_TASK = "audit.tasks.write_checkpoint"
CHECKPOINT_SCHEDULE = "bc.audit-checkpoint"
_LOCK_KEY = 0x6263_6175_6463_6B70  # "bcaudckp": only the checkpoint job takes it


@contextmanager
def _singleton() -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def write_checkpoint() -> dict[str, Any]:
    """Sign and export a checkpoint of the chain head (skipped when nothing changed)."""
    # Imported here: web processes import this module to enqueue the job, never to run it, and
    # the signing and export code (cryptography, boto3) takes ~17 ms to import (it used to be
    # paid by the first request that reached a checkpoint).
    from audit import checkpoints

    with request_context.bind("worker"), _singleton() as got:
        if not got:
            return {"created": False, "seq": None, "detail": "another worker is checkpointing"}
        try:
            outcome = checkpoints.checkpoint_create()
        except checkpoints.CheckpointRefused as exc:
            # Loud on purpose: this means the stored chain no longer matches what was signed.
            logger.error("audit checkpoint refused: %s", exc)
            raise
        return asdict(outcome)


def enqueue_checkpoint() -> None:
    """Queue the checkpoint job; a broker hiccup only delays it until the next scheduled run."""
    try:
        from bcservice.jobs import enqueue

        enqueue(CHECKPOINT_TASK, group=CHECKPOINT_SCHEDULE)
    except Exception:  # never fail the request that appended the event
        logger.warning("could not enqueue the audit checkpoint job", exc_info=True)


def ensure_schedule(using: str = "default", **kwargs: Any) -> None:
    """Create or repair the checkpoint schedule; never resets its next run on re-migrate."""
    from django_q.models import Schedule

    from audit import conf

    wanted = {
        "func": CHECKPOINT_TASK,
        "schedule_type": Schedule.MINUTES,
        "minutes": conf.checkpoint_minutes(),
        "repeats": -1,
    }
    schedule, created = Schedule.objects.using(using).get_or_create(
        name=CHECKPOINT_SCHEDULE, defaults=wanted
    )
    if not created and any(getattr(schedule, k) != v for k, v in wanted.items()):
        for key, value in wanted.items():
            setattr(schedule, key, value)
        schedule.save(using=using)
