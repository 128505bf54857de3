"""The collection sweep and the django-q2 tasks that run it, plus history retention.

``Sweeper`` collects every resource that is due: it leases due resources
(``inventory.status_services.claim``), observes up to ``BC_COLLECT_CONCURRENCY`` at once so a
slow target does not hold up the others, and applies results in batches (one transaction per
batch: statuses, samples, audit events for changes). The task functions stay thin: bind the
worker context, take the sweep guard, run the Sweeper or the retention service.

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

import collections
import dataclasses
import fcntl
import hashlib
import itertools
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Max
from django.utils import timezone

from bcservice import request_context
from connectors.collection import (
    conclude,
    guard_seconds,
    new_owner,
    note_abandoned,
    prepare,
)
from inventory import history, status_services
from inventory.models import Resource, ResourceStatus

logger = logging.getLogger(__name__)

SWEEP_SCHEDULE = "bc.collection-sweep"
RETENTION_SCHEDULE = "bc.history-retention"
_SWEEP_LOCK_KEY = 0x6263_7377_6565_70  # "bcsweep", for pg_try_advisory_lock


@dataclasses.dataclass
class SweepReport:
    collected: int = 0
    changed: int = 0
    statuses: dict[int, ResourceStatus] = dataclasses.field(default_factory=dict)


class Sweeper:
    """Collects due resources: leases them, observes them concurrently, applies in batches.

    Each observation runs on its own daemon thread, at most ``concurrency`` at once, and is
    given up at its guard deadline (``timeout * 2 + 1``): a wedged connector costs one
    abandoned thread, never a slot (a thread pool would lose the slot for good). Leases are
    claimed in batches of a round or more, keeping at most a second round queued. Finished
    attempts are applied in batches of up to ``flush_batch`` or after ``flush_after`` seconds,
    whichever comes first, without waiting for slower targets.
    """

    flush_batch = 250
    flush_after = 0.25

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        keep_statuses: bool = False,
        on_applied: Callable[[dict[int, ResourceStatus]], None] | None = None,
    ) -> None:
        default = int(getattr(settings, "BC_COLLECT_CONCURRENCY", 16))
        self.concurrency = max(1, concurrency or default)
        self.owner = new_owner()
        self.keep_statuses = keep_statuses
        self.on_applied = on_applied
        self.report = SweepReport()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._tokens = itertools.count()
        # resource id -> (resource, attempt time, guard deadline, token, thread)
        self._in_flight: dict[int, tuple[Resource, datetime, float, int, threading.Thread]] = {}
        self._queued: collections.deque[Resource] = collections.deque()  # leased, not started
        self._done: list[tuple[int, status_services.Attempt]] = []
        self._oldest_done = 0.0
        self._lease_seconds = 60.0
        self._refreshed_at = -1e9

    def __enter__(self) -> Sweeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _refresh(self, now: datetime, force: bool = False) -> None:
        """Now and then: status rows for new resources, leases sized for the slowest timeout."""
        if not force and time.monotonic() - self._refreshed_at < 30:
            return
        status_services.ensure_statuses(now=now)
        enabled = Resource.objects.filter(enabled=True)
        slowest = enabled.aggregate(m=Max("timeout_seconds"))["m"] or 5.0
        # A lease covers a round in the queue, its own guard, and time to apply the result.
        self._lease_seconds = (float(slowest) * 2 + 1) * 2 + 60
        self._refreshed_at = time.monotonic()

    def _room(self) -> int:
        """How many more resources to lease: up to two rounds of work, the second queued."""
        return 2 * self.concurrency - len(self._in_flight) - len(self._queued)

    def _fill(self, **which: Any) -> int | None:
        """Lease resources (``which``: see ``claim``) and start what slots allow; None when
        too little room to bother (claims go in batches, not a row at a time)."""
        room = self._room()
        if room < self.concurrency:
            return None
        if "resource_ids" in which:
            which["resource_ids"] = which["resource_ids"][:room]
        claimed = status_services.claim(
            owner=self.owner,
            now=timezone.now(),
            lease_seconds=self._lease_seconds,
            limit=room,
            **which,
        )
        self._queued.extend(claimed)
        self._launch()
        return len(claimed)

    def _launch(self) -> None:
        while self._queued and len(self._in_flight) < self.concurrency:
            self._start(self._queued.popleft())

    def _start(self, resource: Resource) -> None:
        at = timezone.now()
        prepared = prepare(resource, at)
        if isinstance(prepared, status_services.Attempt):
            self._finished(resource.pk, prepared)
            return
        connector, target, credentials = prepared
        token = next(self._tokens)

        def run() -> None:
            try:
                kind, value = "ok", connector.observe(target)
            except BaseException as exc:  # reported as a status, never re-raised
                kind, value = "error", exc
            attempt = conclude(resource, at, kind, value, credentials.handed_out)
            self._results.put((resource.pk, token, attempt))

        thread = threading.Thread(target=run, name=f"bc-observe-{resource.name}", daemon=True)
        deadline = time.monotonic() + guard_seconds(resource)
        self._in_flight[resource.pk] = (resource, at, deadline, token, thread)
        thread.start()

    def _finished(self, resource_id: int, attempt: status_services.Attempt) -> None:
        if not self._done:
            self._oldest_done = time.monotonic()
        self._done.append((resource_id, attempt))

    def _harvest(self, timeout: float) -> None:
        """Take finished observations (waiting up to ``timeout``) and give up overdue ones."""
        arrived = []
        try:
            arrived.append(self._results.get(timeout=timeout))
            while True:
                arrived.append(self._results.get_nowait())
        except queue.Empty:
            pass
        for resource_id, token, attempt in arrived:
            entry = self._in_flight.get(resource_id)
            if entry is not None and entry[3] == token:  # else: late answer of an abandoned call
                del self._in_flight[resource_id]
                self._finished(resource_id, attempt)
        now = time.monotonic()
        for resource_id, (resource, at, deadline, _, thread) in list(self._in_flight.items()):
            if now > deadline:
                del self._in_flight[resource_id]
                note_abandoned(thread, resource.name, guard_seconds(resource))
                self._finished(resource_id, conclude(resource, at, "timeout", None, set()))
        self._launch()

    def _flush(self, force: bool = False) -> None:
        if not self._done:
            return
        young = time.monotonic() - self._oldest_done < self.flush_after
        if not force and len(self._done) < self.flush_batch and young:
            return
        batch, self._done = self._done, []
        try:
            statuses = status_services.apply_observations(batch, owner=self.owner)
        except DatabaseError:
            # The leases expire and the resources are collected again; keep the loop alive.
            logger.exception("could not apply %d collection results", len(batch))
            connection.close()
            return
        changed = [s for s in statuses.values() if s.status_changed]
        self.report.collected += len(statuses)
        self.report.changed += len(changed)
        for s in changed:
            logger.info(
                "status of %s is now %s/%s (%s)",
                s.resource.name,
                s.state,
                s.visibility,
                ",".join(r["code"] for r in s.reasons) or "no reasons",
            )
        if self.keep_statuses:
            self.report.statuses.update(statuses)
        if self.on_applied is not None:
            self.on_applied(statuses)

    def drain(self) -> None:
        while self._in_flight or self._queued:  # bounded: every observation has a deadline
            self._harvest(0.2)
        self._flush(force=True)

    def run_once(self, *, now: datetime | None = None, everything: bool = False) -> SweepReport:
        """One pass: every enabled resource that was due when the pass began, or with
        ``everything`` every enabled resource, due or not (each once; busy ones are skipped)."""
        start = now or timezone.now()
        self._refresh(start, force=True)
        pending: list[int] | None = None
        if everything:
            enabled = Resource.objects.filter(enabled=True).order_by("pk")
            pending = list(enabled.values_list("pk", flat=True))
        exhausted = False
        while True:
            if not exhausted:
                room = self._room()
                if pending is None:
                    claimed = self._fill(due_before=start)
                    exhausted = claimed is not None and claimed < room
                else:
                    if self._fill(resource_ids=pending) is not None:
                        pending = pending[room:]
                    exhausted = not pending
            if not self._in_flight and not self._queued:
                if exhausted:
                    break
                continue
            self._harvest(0.05)
            self._flush()
        self.drain()
        return self.report

    def run_until(self, deadline: float, stop: threading.Event | None = None) -> SweepReport:
        """Collect whatever becomes due until ``deadline`` (time.monotonic) or ``stop``."""
        stop = stop or threading.Event()
        while time.monotonic() < deadline and not stop.is_set():
            try:
                self._refresh(timezone.now())
                claimed = self._fill()
            except DatabaseError:
                logger.exception("collection sweep could not lease resources")
                connection.close()
                claimed = 0
            if self._in_flight:
                self._harvest(0.05)
                self._flush()
            else:
                self._flush(force=True)
                if not claimed:  # nothing due: look again in a second
                    stop.wait(max(0.0, min(1.0, deadline - time.monotonic())))
        self.drain()
        return self.report

    def close(self) -> None:
        self.drain()


def sweep(
    *, now: datetime | None = None, concurrency: int | None = None, everything: bool = False
) -> SweepReport:
    """One pass over the enabled resources that are due now (or all of them, ``everything``)."""
    with Sweeper(concurrency=concurrency, keep_statuses=True) as sweeper:
        return sweeper.run_once(now=now, everything=everything)


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
    from bcservice.jobs import enqueue

    enqueue("connectors.tasks.run_sweep", group=SWEEP_SCHEDULE)


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
