"""Collection: observe resources through their connectors and hand the results to inventory.

``observe_resource`` turns one resource into a sanitized ``Attempt``; ``collect_resource``
collects one resource now (API, CLI) under its lease; ``check_connection`` looks without saving
(admin). The sweep over every due resource (``connectors.tasks.Sweeper``) builds on these.

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

import json
import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

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
        yellow_lag_seconds=float(resource.yellow_lag_seconds),
        red_lag_seconds=float(resource.red_lag_seconds),
        rpo_target_seconds=float(resource.rpo_target_seconds),
    )


# Threads whose observe() never returned; kept only to count them in logs.
_abandoned: list[threading.Thread] = []
_abandoned_lock = threading.Lock()


def note_abandoned(thread: threading.Thread, name: str, limit: float) -> None:
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
        note_abandoned(thread, name, limit)
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


def failed_attempt(
    at: datetime, code: str, message: str, scrub: set[str]
) -> status_services.Attempt:
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


def prepare(resource: Resource, at: datetime) -> Any:
    """(connector, target, credentials) for one observation, or a failed Attempt."""
    try:
        connector = registry.get_connector(resource.platform)
    except registry.UnknownPlatform:
        message = f"no connector for platform {resource.platform!r}"
        return failed_attempt(at, "unknown_platform", message, set())
    except Exception as exc:  # a platform module that fails to import (missing driver)
        return failed_attempt(
            at, "connector_error", f"connector unavailable: {type(exc).__name__}", set()
        )
    credentials = MonitorCredentials(resource.secret_ref)
    return connector, build_target(resource, credentials), credentials


def conclude(
    resource: Resource, at: datetime, kind: str, value: Any, scrub: set[str]
) -> status_services.Attempt:
    """The Attempt for what a guarded observe() call came back with (see _guarded_call)."""
    if kind == "timeout":
        limit = guard_seconds(resource)
        message = f"timeout: the {resource.platform} connector did not answer within {limit:g} s"
        return failed_attempt(at, "collection_timeout", message, scrub)
    if kind == "error":
        if isinstance(value, secrets.SecretError):
            return failed_attempt(
                at, "secret_unavailable", f"credentials unavailable: {value}", scrub
            )
        trace = "".join(traceback.format_exception(value))
        logger.error("observe() of %s crashed: %s", resource.name, _scrub_log(trace, scrub))
        message = f"connector failed: {type(value).__name__}: {value}"
        return failed_attempt(at, "connector_error", message, scrub)
    if not isinstance(value, Observation):
        return failed_attempt(at, "connector_error", "connector returned no observation", scrub)
    try:
        return attempt_from_observation(value, at, scrub)
    except Exception as exc:  # a malformed observation (wrong types inside)
        return failed_attempt(at, "connector_error", f"malformed observation: {exc!r}", scrub)


def observe_resource(resource: Resource, *, now: datetime | None = None) -> status_services.Attempt:
    """Observe one resource through its connector. Never raises for a problem on the target,
    in the configuration or in the connector; touches no database."""
    at = now or timezone.now()
    prepared = prepare(resource, at)
    if isinstance(prepared, status_services.Attempt):
        return prepared
    connector, target, credentials = prepared
    limit = guard_seconds(resource)
    kind, value = _guarded_call(lambda: connector.observe(target), limit, resource.name)
    return conclude(resource, at, kind, value, credentials.handed_out)


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
