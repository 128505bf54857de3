"""Reading and verifying the audit log.

Verification walks the chain in sequence order (``audit.chain.walk``). On PostgreSQL rows come
through the fast path in ``audit.pgwalk`` (plain SQL, and several processes for a long chain);
on SQLite through the ORM in batches. Both feed the same walk, so they agree by construction.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from audit import conf, pgwalk
from audit.chain import GENESIS_HASH, ROW_FIELDS, Link, WalkResult, canonical_rows, format_time
from audit.chain import walk as walk_links
from audit.models import AuditCheckpoint, AuditEvent

# Below this many events one process is quicker than starting workers.
PARALLEL_MIN_EVENTS = 300_000


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events_checked: int
    first_bad_seq: int | None
    reason: str = ""


def head() -> dict[str, Any] | None:
    """The newest event's seq and hash, or None for an empty log."""
    return AuditEvent.objects.order_by("-seq").values("seq", "hash", "at").first()


def _orm_links(start: int, upto: int, batch: int) -> Iterator[Link]:
    last = start - 1
    while last < upto:
        rows = list(
            AuditEvent.objects.filter(seq__gt=last, seq__lte=upto)
            .order_by("seq")
            .values_list(*ROW_FIELDS)[:batch]
        )
        if not rows:
            return
        last = rows[-1][0]
        yield from canonical_rows((*r[:1], format_time(r[1]), *r[2:]) for r in rows)


def _pg_params() -> dict[str, Any]:
    """Connection parameters for worker processes, from the Django connection's settings."""
    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings.get("USER"),
        "password": settings.get("PASSWORD"),
        "host": settings.get("HOST"),
        "port": settings.get("PORT"),
    }
    for name, value in (settings.get("OPTIONS") or {}).items():
        if isinstance(value, str | int) and not isinstance(value, bool):
            params[name] = value
    return {k: v for k, v in params.items() if v not in (None, "")}


def walk_db(
    *,
    start: int = 1,
    upto: int | None = None,
    prev_hash: str | None = GENESIS_HASH,
    checkpoints: Mapping[int, str] | None = None,
    batch_size: int = 5000,
    workers: int | None = None,
) -> WalkResult:
    """Walk stored events start..upto (default: the current head, pinned before reading).

    ``prev_hash=None`` takes the first row's own link as given (an incremental check that begins
    at a checkpointed event, whose hash ``checkpoints`` then pins).
    """
    if upto is None:
        top = head()
        upto = top["seq"] if top else 0
    if connection.vendor != "postgresql":
        links = _orm_links(start, upto, batch_size)
        if prev_hash is None:
            first = next(links, None)
            if first is None:
                return walk_links([], expected_seq=start, checkpoints=checkpoints)
            prev_hash, links = first[1], itertools.chain([first], links)
        return walk_links(links, expected_seq=start, prev_hash=prev_hash, checkpoints=checkpoints)
    workers = conf.verify_workers() if workers is None else workers
    # A django-q worker is a daemonic process, which may not start processes of its own.
    daemonic = multiprocessing.current_process().daemon
    if start == 1 and workers > 1 and upto >= PARALLEL_MIN_EVENTS and not daemonic:
        return pgwalk.walk_parallel(_pg_params(), upto, checkpoints, workers)
    with connection.cursor() as cursor:
        return pgwalk.walk_range(cursor, start, upto, checkpoints, prev_hash).result


def verify_chain(batch_size: int = 5000) -> VerifyResult:
    """Walk the whole chain in sequence order; stop at the first event that does not verify.

    Checks that sequence numbers are contiguous from 1, that each row links to the previous hash,
    and that each row's hash matches its content. (Against the exported checkpoints as well:
    ``audit.verification.verify_all``.)
    """
    result = walk_db(batch_size=batch_size)
    return VerifyResult(result.ok, result.checked, result.first_bad_seq, result.reason)


def latest_checkpoint(upto_seq: int | None = None) -> AuditCheckpoint | None:
    """The newest checkpoint, or the newest at or below ``upto_seq``."""
    checkpoints = AuditCheckpoint.objects.order_by("-seq")
    if upto_seq is not None:
        checkpoints = checkpoints.filter(seq__lte=upto_seq)
    return checkpoints.first()


def events(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str = "",
    actor: str = "",
    actor_id: int | None = None,
    object_type: str = "",
    object_id: str = "",
    from_seq: int | None = None,
    to_seq: int | None = None,
) -> QuerySet[AuditEvent]:
    """Events matching an auditor's filters, in sequence order.

    ``since`` is inclusive and ``until`` exclusive; ``kind`` is a prefix of the action
    ("request." matches every request event); ``from_seq``/``to_seq`` are inclusive.
    """
    queryset = AuditEvent.objects.order_by("seq")
    if since is not None:
        queryset = queryset.filter(at__gte=since)
    if until is not None:
        queryset = queryset.filter(at__lt=until)
    if kind:
        queryset = queryset.filter(action__startswith=kind)
    if actor:
        queryset = queryset.filter(actor_name=actor)
    if actor_id is not None:
        queryset = queryset.filter(actor_id=actor_id)
    if object_type:
        queryset = queryset.filter(object_type=object_type)
    if object_id:
        queryset = queryset.filter(object_id=object_id)
    if from_seq is not None:
        queryset = queryset.filter(seq__gte=from_seq)
    if to_seq is not None:
        queryset = queryset.filter(seq__lte=to_seq)
    return queryset


def events_about(objects: Iterable[tuple[str, str | int]]) -> QuerySet[AuditEvent]:
    """Events whose object is one of ``objects`` ((object_type, object_id) pairs), in seq order.

    Used by reports in other apps (e.g. an evidence report: a request and its execution); the
    caller names the objects, so audit needs to know nothing about their models.
    """
    condition = Q(pk__in=[])
    for object_type, object_id in objects:
        condition |= Q(object_type=object_type, object_id=str(object_id))
    return AuditEvent.objects.filter(condition).order_by("seq")


def checkpoint_covering(seq: int) -> AuditCheckpoint | None:
    """The first signed checkpoint at or after ``seq``: its hash pins event ``seq`` through the
    chain links. None when no checkpoint has reached ``seq`` yet."""
    return AuditCheckpoint.objects.filter(seq__gte=seq).order_by("seq").first()
