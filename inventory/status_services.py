"""Writes of monitoring state: applying collection attempts, collection leases, history retention.

The collector (``connectors.collection``) observes targets and hands each attempt here as plain
data (``Attempt``: a ``rules.RuleInput`` plus markers and a sanitized snapshot). This module
evaluates the rules against the locked status row and, in one transaction per batch, updates
``ResourceStatus``, appends ``ObservationSample`` rows and records ``resource.status_changed``
audit events for the statuses whose state or visibility changed.

Leases: a collector claims a resource with a conditional UPDATE (``lease_until`` empty or in the
past), so two workers never collect the same resource at once, on SQLite and PostgreSQL alike.
Applying an attempt releases the lease and schedules the next collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit
from inventory import readiness, rules
from inventory.models import ObservationSample, Resource, ResourceStatus
from notifications.services import notify

NEVER_OBSERVED = [{"code": "never_observed", "message": "No observation has been made yet."}]
_MARKER_LEN = ResourceStatus._meta.get_field("primary_marker").max_length
_STATUS_FIELDS = [
    "state",
    "visibility",
    "reasons",
    "evaluated_at",
    "observed_at",
    "lag_seconds",
    "lag_bytes",
    "primary_marker",
    "dr_marker",
    "heartbeat_at",
    "replication",
    "primary_role",
    "dr_role",
    "last_attempt_at",
    "last_observation",
    "state_changed_at",
    "next_collect_at",
    "lease_until",
    "lease_owner",
]


# Resource columns a connector needs (connectors.collection.build_target) and the write path
# never reads (apply_observations).
_OBSERVE_FIELDS = (
    "id",
    "name",
    "platform",
    "connection",
    "secret_ref",
    "timeout_seconds",
    "heartbeat_table",
    "heartbeat_column",
    # Target carries the lag thresholds and RPO target: left out, each one was a deferred
    # field, i.e. one more SELECT per resource per observation (found by the benchmark).
    "yellow_lag_seconds",
    "red_lag_seconds",
    "rpo_target_seconds",
)
_RESOURCE_UNUSED = ("connection", "secret_ref", "owner", "created_at", "updated_at")


@dataclass(frozen=True)
class Attempt:
    """One collection attempt, already sanitized (no secrets anywhere in it)."""

    at: datetime  # when the attempt started
    input: rules.RuleInput  # observed_at is set only when both sides were seen
    primary_marker: str | None = None
    dr_marker: str | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)


def thresholds_for(resource: Resource) -> rules.Thresholds:
    return rules.Thresholds(
        yellow_lag_seconds=resource.yellow_lag_seconds,
        red_lag_seconds=resource.red_lag_seconds,
        rpo_target_seconds=resource.rpo_target_seconds,
        freshness_seconds=resource.freshness_seconds,
        heartbeat_max_age_seconds=(
            resource.heartbeat_max_age_seconds if resource.heartbeat_table else None
        ),
    )


def stored_evaluation(status: ResourceStatus | None) -> rules.Evaluation:
    if status is None:
        return rules.Evaluation(
            rules.RED, rules.LOST, tuple(rules.Reason(**r) for r in NEVER_OBSERVED)
        )
    reasons = tuple(
        rules.Reason(str(r.get("code", "")), str(r.get("message", "")))
        for r in status.reasons or []
        if isinstance(r, dict)
    )
    return rules.Evaluation(status.state, status.visibility, reasons)


def current_evaluation(
    resource: Resource, status: ResourceStatus | None, now: datetime | None = None
) -> rules.Evaluation:
    """The status as it must be shown now: the stored one plus staleness (invariant 9), the
    drill programme (``drill_overdue``) and the recorded vs observed primary site."""
    observed_at = status.observed_at if status is not None else None
    return rules.at_read_time(
        stored_evaluation(status),
        observed_at,
        resource.freshness_seconds,
        now or timezone.now(),
        drill=readiness.drill_input(
            resource.tier, resource.last_passed_drill_at, resource.created_at
        ),
        site=readiness.site_input(resource, status),
    )


# --- leases -----------------------------------------------------------------------------------


def ensure_statuses(*, now: datetime | None = None) -> int:
    """Create the missing status rows (new resources), due for collection now."""
    now = now or timezone.now()
    missing = Resource.objects.filter(status__isnull=True).values_list("pk", flat=True)
    rows = [
        ResourceStatus(resource_id=pk, reasons=NEVER_OBSERVED, next_collect_at=now)
        for pk in missing
    ]
    ResourceStatus.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def claim(
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    resource_ids: Sequence[int] | None = None,
    due_before: datetime | None = None,
) -> list[Resource]:
    """Lease up to ``limit`` resources to ``owner`` and return them.

    Which: the given ``resource_ids`` (enabled or not, due or not), or else the enabled resources
    due by ``due_before`` (default ``now``), most overdue first.
    The UPDATE re-checks the lease condition, so when two workers race for a row the database
    gives it to one of them (PostgreSQL re-evaluates the WHERE after the row lock; SQLite has a
    single writer). Only the rows this call actually leased are returned.
    """
    candidates = ResourceStatus.objects.filter(_free(now))
    if resource_ids is not None:
        candidates = candidates.filter(resource_id__in=list(resource_ids))
    else:
        candidates = candidates.filter(resource__enabled=True).filter(
            Q(next_collect_at__isnull=True) | Q(next_collect_at__lte=due_before or now)
        )
    until = now + timedelta(seconds=lease_seconds)
    # Candidates are locked with SKIP LOCKED (PostgreSQL re-checks the lease condition on the
    # latest row version under the lock), so concurrent sweepers split the due rows between
    # them instead of queueing on the same ones; SQLite's transactions are BEGIN IMMEDIATE.
    with transaction.atomic():
        ids = list(
            candidates.order_by("next_collect_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("resource_id", flat=True)[:limit]
        )
        if not ids:
            return []
        ResourceStatus.objects.filter(resource_id__in=ids).update(
            lease_until=until, lease_owner=owner
        )
    # Only what observe() needs; the status row is read again when the result is applied.
    return list(Resource.objects.filter(pk__in=ids).only(*_OBSERVE_FIELDS).order_by())


def release(*, owner: str, resource_ids: Sequence[int]) -> int:
    """Give leases back without applying anything (the attempt could not be made at all)."""
    return ResourceStatus.objects.filter(
        resource_id__in=list(resource_ids), lease_owner=owner
    ).update(lease_until=None, lease_owner="")


# --- applying attempts ------------------------------------------------------------------------


def _next_collect(status: ResourceStatus, resource: Resource, at: datetime) -> datetime:
    """Keep the cadence: schedule from the due time when this attempt served it, else from now."""
    interval = timedelta(seconds=resource.interval_seconds)
    due = status.next_collect_at
    base = due if due is not None and at - interval < due <= at else at
    return base + interval


def _apply_one(
    status: ResourceStatus, attempt: Attempt, now: datetime
) -> tuple[rules.Evaluation, bool]:
    resource = status.resource
    inp = attempt.input
    if inp.visible:
        status.observed_at = inp.observed_at
        status.lag_seconds = inp.lag_seconds
        status.lag_bytes = inp.lag_bytes
        status.primary_marker = (attempt.primary_marker or "")[:_MARKER_LEN]
        status.dr_marker = (attempt.dr_marker or "")[:_MARKER_LEN]
        status.heartbeat_at = inp.heartbeat_at
        status.replication = inp.replication
        status.primary_role = inp.primary.role
        status.dr_role = inp.dr.role
    else:
        # Nothing seen now: judge staleness by the last values that were seen (invariant 9).
        inp = replace(inp, observed_at=status.observed_at)
    evaluation = rules.evaluate(inp, thresholds_for(resource), now)
    changed = (status.state, status.visibility) != (evaluation.state, evaluation.visibility)
    before = _audit_view(status)
    status.state = evaluation.state
    status.visibility = evaluation.visibility
    status.reasons = evaluation.reason_dicts()
    status.evaluated_at = now
    status.last_attempt_at = attempt.at
    status.last_observation = attempt.snapshot
    if changed or status.state_changed_at is None:
        status.state_changed_at = now
    status.next_collect_at = _next_collect(status, resource, attempt.at)
    status.lease_until = None
    status.lease_owner = ""
    status._audit_before = before
    return evaluation, changed


def _audit_view(status: ResourceStatus) -> dict[str, Any]:
    return {
        "state": status.state,
        "visibility": status.visibility,
        "reasons": [r.get("code") for r in status.reasons or [] if isinstance(r, dict)],
    }


def _adapter(field: Any) -> Any:
    """How a value of ``field`` becomes a query parameter on this connection."""
    if connection.vendor == "postgresql":
        # psycopg adapts datetimes, numbers and strings itself; only JSON needs wrapping.
        if field.get_internal_type() == "JSONField":
            return lambda value: connection.ops.adapt_json_value(value, field.encoder)
        return None
    return lambda value: field.get_db_prep_save(value, connection)


def _write_statuses(statuses: Sequence[ResourceStatus]) -> None:
    """One parameterised UPDATE per row, sent with executemany.

    Django's ``bulk_update`` builds a CASE expression per field and row; at 250 rows x 19 fields
    that cost ~2 s of Python per batch (measured, see docs/benchmarks.md). A plain statement run
    with executemany (pipelined by psycopg 3) does the same work in a few milliseconds.
    """
    if not statuses:
        return
    fields = [ResourceStatus._meta.get_field(name) for name in _STATUS_FIELDS]
    adapters = [(f.attname, _adapter(f)) for f in fields]
    qn = connection.ops.quote_name
    # Only quoted column/table names from the model are interpolated; values are parameters.
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    table = qn(ResourceStatus._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE {qn('resource_id')} = %s"  # noqa: S608
    params = []
    for status in statuses:
        row = [
            getattr(status, name) if adapt is None else adapt(getattr(status, name))
            for name, adapt in adapters
        ]
        row.append(status.resource_id)
        params.append(row)
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


@transaction.atomic
def apply_observations(
    items: Sequence[tuple[int, Attempt]],
    *,
    owner: str | None,
    actor: Any = None,
    now: datetime | None = None,
) -> dict[int, ResourceStatus]:
    """Apply many attempts in one transaction; returns the updated status per resource id.

    With ``owner``, only rows still leased to it are written: a lease that expired and was taken
    by another worker is theirs now, and that worker records its own attempt.
    """
    now = now or timezone.now()
    if not items:
        return {}
    ids = [rid for rid, _ in items]
    rows = (
        ResourceStatus.objects.select_for_update(of=("self",))
        .select_related("resource")
        # Only what the rules and the audit need: the old snapshot is overwritten anyway, and
        # decoding JSON nobody reads is a measurable share of the batch (docs/benchmarks.md).
        .defer("last_observation", *(f"resource__{f}" for f in _RESOURCE_UNUSED))
        .filter(resource_id__in=ids)
    )
    if owner is not None:
        rows = rows.filter(lease_owner=owner)
    statuses = {s.resource_id: s for s in rows}
    samples, updated, changes, alerting = [], [], [], []
    for rid, attempt in items:
        status = statuses.get(rid)
        if status is None:
            continue  # lease lost: the worker that holds it now writes its own attempt
        first = status.state_changed_at is None  # a new resource's first status may alert too
        evaluation, changed = _apply_one(status, attempt, now)
        updated.append(status)
        status.status_changed = changed
        if changed:
            changes.append(status)
        if changed or first:
            alerting.append(status)
        visible = attempt.input.visible
        samples.append(
            ObservationSample(
                resource_id=rid,
                at=attempt.at,
                lag_seconds=attempt.input.lag_seconds if visible else None,
                lag_bytes=attempt.input.lag_bytes if visible else None,
                state=evaluation.state,
                visible=visible,
            )
        )
    _write_statuses(updated)
    ObservationSample.objects.bulk_create(samples, ignore_conflicts=True, batch_size=1000)
    for status in changes:
        audit.record(
            action="resource.status_changed",
            actor=actor if actor is not None else "collector",
            object_type="inventory.resource",
            object_id=status.resource_id,
            object_name=status.resource.name,
            before=status._audit_before,
            after=_audit_view(status),
        )
    for status in alerting:
        _notify_status(status)
    return {s.resource_id: s for s in updated}


def _notify_status(status: ResourceStatus) -> None:
    """After the commit, hand the new state/visibility to notifications, which decides whether
    an alert opens, changes or resolves (deduplicated there, per resource and condition)."""
    resource = status.resource
    transaction.on_commit(
        partial(
            notify,
            "resource.status_changed",
            subject=f"{resource.name}: {status.state}, visibility {status.visibility}",
            tier=resource.tier,
            environment=resource.environment,
            payload={
                "resource": resource.name,
                "before": status._audit_before,
                "after": {**_audit_view(status), "reasons": status.reasons},
            },
            resource_id=status.resource_id,
        )
    )


def apply_observation(
    resource_id: int,
    attempt: Attempt,
    *,
    owner: str | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> ResourceStatus | None:
    """Apply one attempt (see ``apply_observations``); None when the lease was lost."""
    return apply_observations([(resource_id, attempt)], owner=owner, actor=actor, now=now).get(
        resource_id
    )
