"""Collection: observe resources through their connectors and hand the results to inventory.

``collect_resource`` collects one resource now (API, CLI). ``Sweeper`` collects every resource
that is due: it leases due resources (``inventory.status_services.claim``), observes up to
``BC_COLLECT_CONCURRENCY`` at once so a slow target does not hold up the others, and applies
results in batches (one transaction per batch: statuses, samples, audit events for changes).

Every ``observe()`` call runs on its own daemon thread under a hard guard of
``timeout_seconds * 2 + 1``: connectors promise their own timeouts, but a wedged driver must
still not wedge the worker. A guarded call that does not return in time becomes a
``collection_timeout`` status and its thread is abandoned. Unknown platforms, unresolvable secrets
and connector crashes likewise become statuses with a reason, never exceptions out of a sweep.

Monitoring asks only for ``monitor`` credentials (invariant 6): the credentials callable given to
the connector refuses any other purpose. The values it hands out are remembered for the attempt
and scrubbed from everything stored or logged (invariant 7).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import logging
import os
import queue
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.db.models import Max
from django.utils import timezone

from connectors import registry, secrets
from connectors.contract import HeartbeatConfig, Observation, Target
from inventory import connection_settings, rules, status_services
from inventory.models import Resource, ResourceStatus

logger = logging.getLogger(__name__)

_SNAPSHOT_MAX_CHARS = 16_000  # the sanitized payload kept on the status row, for troubleshooting
_ERROR_MAX_CHARS = 300


class CollectionBusy(Exception):
    """Another worker holds the resource's collection lease right now."""

    def __init__(self, resource_id: int) -> None:
        super().__init__(f"resource {resource_id} is being collected by another worker")
        self.resource_id = resource_id


class MonitorCredentials:
    """The credentials callable of a monitoring ``Target``: resolves lazily, monitor only."""

    def __init__(self, secret_ref: str) -> None:
        self.secret_ref = secret_ref
        self.handed_out: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, purpose: str) -> Mapping[str, str]:
        if purpose != "monitor":
            raise secrets.SecretError(
                f"monitoring may only use 'monitor' credentials, not {purpose!r}"
            )
        creds = secrets.resolve(self.secret_ref, purpose)
        with self._lock:
            self.handed_out.update(v for v in creds.values() if v)
        return creds

    def __repr__(self) -> str:
        return f"MonitorCredentials({self.secret_ref!r})"


def guard_seconds(resource: Resource) -> float:
    return float(resource.timeout_seconds) * 2 + 1


def build_target(resource: Resource, credentials: Callable[[str], Mapping[str, str]]) -> Target:
    heartbeat = None
    if resource.heartbeat_table:
        heartbeat = HeartbeatConfig(resource.heartbeat_table, resource.heartbeat_column or "ts")
    return Target(
        name=resource.name,
        platform=resource.platform,
        connection=connection_settings.with_defaults(resource.platform, resource.connection),
        credentials=credentials,
        heartbeat=heartbeat,
        timeout_seconds=float(resource.timeout_seconds),
        resource_id=resource.pk,
    )


# Threads whose observe() never returned; kept only to count them in logs.
_abandoned: list[threading.Thread] = []
_abandoned_lock = threading.Lock()


def _abandon(thread: threading.Thread, name: str, limit: float) -> None:
    with _abandoned_lock:
        _abandoned[:] = [t for t in _abandoned if t.is_alive()]
        _abandoned.append(thread)
        count = len(_abandoned)
    logger.warning(
        "observe() of %s did not return within %.1f s; abandoned (%d abandoned threads alive)",
        name,
        limit,
        count,
    )


def _guarded_call(fn: Callable[[], Any], limit: float, name: str) -> tuple[str, Any]:
    """("ok", result) | ("error", exception) | ("timeout", None), never blocking past ``limit``."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # reported as a status, never re-raised
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"bc-observe-{name}", daemon=True)
    thread.start()
    if not done.wait(limit):
        _abandon(thread, name, limit)
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("result")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


def _text(value: Any, scrub: set[str]) -> str:
    return str(secrets.sanitize(str(value or ""), scrub))[:_ERROR_MAX_CHARS]


def _failed(at: datetime, code: str, message: str, scrub: set[str]) -> status_services.Attempt:
    message = _text(message, scrub)
    failure = rules.Reason(code, message)
    inp = rules.RuleInput(observed_at=None, failure=failure)
    snapshot = {"attempted_at": at.isoformat(), "failure": {"code": code, "message": message}}
    return status_services.Attempt(at=at, input=inp, snapshot=snapshot)


def _side_snapshot(side: Any) -> dict[str, Any]:
    return {
        "site": side.site,
        "endpoint": side.endpoint,
        "outcome": str(side.outcome),
        "error": side.error,
        "role": str(side.role),
        "healthy": side.healthy,
        "marker": side.marker,
        "details": side.details,
    }


def _snapshot(obs: Observation, scrub: set[str]) -> dict[str, Any]:
    # Built by hand rather than dataclasses.asdict (a deep copy): this runs for every
    # observation, and sanitize() copies anyway.
    data = secrets.sanitize(
        {
            "observed_at": obs.observed_at,
            "primary": _side_snapshot(obs.primary),
            "dr": _side_snapshot(obs.dr),
            "replication": str(obs.replication),
            "lag_seconds": obs.lag_seconds,
            "lag_bytes": obs.lag_bytes,
            "marker_available": obs.marker_available,
            "primary_marker": obs.primary_marker,
            "dr_marker": obs.dr_marker,
            "heartbeat_at": obs.heartbeat_at,
            "raw": obs.raw,
            "notes": obs.notes,
        },
        scrub,
    )
    if data["raw"] and len(json.dumps(data["raw"], default=str)) > _SNAPSHOT_MAX_CHARS:
        data["raw"] = {"truncated": "the raw payload was too large to keep"}
    return data


def attempt_from_observation(
    observation: Observation, at: datetime, scrub: set[str] = frozenset()
) -> status_services.Attempt:
    """Turn a connector's observation into sanitized plain data for the rules and the store."""

    def side(s: Any) -> rules.SideInput:
        return rules.SideInput(
            outcome=str(s.outcome), role=str(s.role), error=_text(s.error, scrub)
        )

    primary, dr = side(observation.primary), side(observation.dr)
    visible = primary.visible and dr.visible
    inp = rules.RuleInput(
        observed_at=_aware(observation.observed_at) if visible else None,
        primary=primary,
        dr=dr,
        replication=str(observation.replication),
        lag_seconds=observation.lag_seconds,
        lag_bytes=observation.lag_bytes,
        marker_available=bool(observation.marker_available),
        heartbeat_at=_aware(observation.heartbeat_at),
    )
    return status_services.Attempt(
        at=at,
        input=inp,
        primary_marker=_text(observation.primary_marker, scrub) or None,
        dr_marker=_text(observation.dr_marker, scrub) or None,
        snapshot=_snapshot(observation, scrub),
    )


def _prepare(resource: Resource, at: datetime) -> Any:
    """(connector, target, credentials) for one observation, or a failed Attempt."""
    try:
        connector = registry.get_connector(resource.platform)
    except registry.UnknownPlatform:
        message = f"no connector for platform {resource.platform!r}"
        return _failed(at, "unknown_platform", message, set())
    except Exception as exc:  # a platform module that fails to import (missing driver)
        return _failed(at, "connector_error", f"connector unavailable: {type(exc).__name__}", set())
    credentials = MonitorCredentials(resource.secret_ref)
    return connector, build_target(resource, credentials), credentials


def _conclude(
    resource: Resource, at: datetime, kind: str, value: Any, scrub: set[str]
) -> status_services.Attempt:
    """The Attempt for what a guarded observe() call came back with (see _guarded_call)."""
    if kind == "timeout":
        limit = guard_seconds(resource)
        message = f"timeout: the {resource.platform} connector did not answer within {limit:g} s"
        return _failed(at, "collection_timeout", message, scrub)
    if kind == "error":
        if isinstance(value, secrets.SecretError):
            return _failed(at, "secret_unavailable", f"credentials unavailable: {value}", scrub)
        trace = "".join(traceback.format_exception(value))
        logger.error("observe() of %s crashed: %s", resource.name, _scrub_log(trace, scrub))
        message = f"connector failed: {type(value).__name__}: {value}"
        return _failed(at, "connector_error", message, scrub)
    if not isinstance(value, Observation):
        return _failed(at, "connector_error", "connector returned no observation", scrub)
    try:
        return attempt_from_observation(value, at, scrub)
    except Exception as exc:  # a malformed observation (wrong types inside)
        return _failed(at, "connector_error", f"malformed observation: {exc!r}", scrub)


def observe_resource(resource: Resource, *, now: datetime | None = None) -> status_services.Attempt:
    """Observe one resource through its connector. Never raises for a problem on the target,
    in the configuration or in the connector; touches no database."""
    at = now or timezone.now()
    prepared = _prepare(resource, at)
    if isinstance(prepared, status_services.Attempt):
        return prepared
    connector, target, credentials = prepared
    limit = guard_seconds(resource)
    kind, value = _guarded_call(lambda: connector.observe(target), limit, resource.name)
    return _conclude(resource, at, kind, value, credentials.handed_out)


def _scrub_log(text: str, scrub: set[str]) -> str:
    return str(secrets.sanitize(text, scrub))


def collect_resource(
    resource_id: int, *, now: datetime | None = None, actor: Any = None
) -> ResourceStatus:
    """Collect one resource now and return its new status.

    Raises ``Resource.DoesNotExist`` for an unknown id and ``CollectionBusy`` when another worker
    is collecting it at this moment (the lease keeps two collections of one resource apart).
    """
    now = now or timezone.now()
    if not ResourceStatus.objects.filter(resource_id=resource_id).exists():
        if not Resource.objects.filter(pk=resource_id).exists():
            raise Resource.DoesNotExist(f"no resource with id {resource_id}")
        status_services.ensure_statuses(now=now)
    timeout = Resource.objects.filter(pk=resource_id).values_list("timeout_seconds", flat=True)
    lease = (float(timeout.first() or 5.0)) * 2 + 31
    owner = new_owner()
    claimed = status_services.claim(
        owner=owner,
        now=now,
        lease_seconds=lease,
        limit=1,
        resource_ids=[resource_id],
    )
    if not claimed:
        raise CollectionBusy(resource_id)
    try:
        attempt = observe_resource(claimed[0], now=now)
        status = status_services.apply_observation(resource_id, attempt, owner=owner, actor=actor)
    except BaseException:
        status_services.release(owner=owner, resource_ids=[resource_id])
        raise
    if status is None:  # the lease expired while observing and another worker took over
        raise CollectionBusy(resource_id)
    return status


def check_connection(resource: Resource, *, now: datetime | None = None) -> dict[str, Any]:
    """What the connector sees right now, evaluated but saved nowhere (admin "test connection")."""
    now = now or timezone.now()
    attempt = observe_resource(resource, now=now)
    evaluation = rules.evaluate(attempt.input, status_services.thresholds_for(resource), now)
    return {
        "resource": resource.name,
        "platform": resource.platform,
        "state": evaluation.state,
        "visibility": evaluation.visibility,
        # "never observed" is about the stored history, not about this look.
        "reasons": [r for r in evaluation.reason_dicts() if r["code"] != "never_observed"],
        "observation": attempt.snapshot,
    }


def new_owner() -> str:
    """A lease owner token: which process claimed a resource (kept short for the column)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"[:64]


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
        prepared = _prepare(resource, at)
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
            attempt = _conclude(resource, at, kind, value, credentials.handed_out)
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
                _abandon(thread, resource.name, guard_seconds(resource))
                self._finished(resource_id, _conclude(resource, at, "timeout", None, set()))
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
            db_connection.close()
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
                db_connection.close()
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
