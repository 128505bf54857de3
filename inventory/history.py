"""Monitoring history and reads: lag history, status summary, group status, the status board,
and the history retention job (the one write here: it only reshapes history).

Every function takes querysets already scoped by ``inventory.selectors`` (or one resource the
caller was allowed to see), and shows statuses as they are *now*: a stored status whose values
have gone stale is shown with a loss of visibility (``rules.at_read_time``, invariant 9).

History: raw samples live ``BC_HISTORY_RAW_HOURS``; older history exists only as 5-minute
rollups. Retention rolls up whole buckets, so raw points and rollups never overlap in time and a
range is simply both, merged by time. A rollup point reports the bucket's worst state and its
maximum lag (conservative: a readiness view must not average a breach away).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min, QuerySet
from django.utils import timezone

from inventory import readiness, rules
from inventory.models import ObservationRollup, ObservationSample, Resource, ResourceGroup
from inventory.status_services import current_evaluation

BUCKET_SECONDS = 300  # rollup resolution: 5 minutes
DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=92)
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Point:
    at: datetime
    lag_seconds: float | None
    lag_bytes: int | None
    state: str
    visible: bool
    resolution_seconds: int  # 0 for a raw sample, BUCKET_SECONDS for a rollup
    samples: int = 1


def history_points(
    resource_id: int, since: datetime, until: datetime, limit: int = MAX_POINTS
) -> tuple[list[Point], bool]:
    """Points in [since, until] in time order, at most ``limit``; True when more exist."""
    raw = (
        ObservationSample.objects.filter(resource_id=resource_id, at__gte=since, at__lte=until)
        .order_by("at")
        .values_list("at", "lag_seconds", "lag_bytes", "state", "visible")[: limit + 1]
    )
    rollups = (
        ObservationRollup.objects.filter(
            resource_id=resource_id,
            bucket_seconds=BUCKET_SECONDS,
            bucket_start__gte=since,
            bucket_start__lte=until,
        )
        .order_by("bucket_start")
        .values_list(
            "bucket_start",
            "lag_seconds_max",
            "lag_bytes_max",
            "worst_state",
            "invisible_samples",
            "samples",
        )[: limit + 1]
    )
    raw_points = (Point(at, lag, lb, st, vis, 0) for at, lag, lb, st, vis in raw)
    rollup_points = (
        Point(at, lag, lb, st, invisible == 0, BUCKET_SECONDS, n)
        for at, lag, lb, st, invisible, n in rollups
    )
    merged = list(heapq.merge(rollup_points, raw_points, key=lambda p: p.at))
    return merged[:limit], len(merged) > limit


def current_status(resource: Resource, now: datetime | None = None) -> rules.Evaluation:
    """One resource's status as shown now (needs ``status`` selected with the resource)."""
    return current_evaluation(resource, getattr(resource, "status", None), now)


def status_summary(resources: QuerySet[Resource], now: datetime | None = None) -> dict[str, Any]:
    """Counts per state and per visibility over ``resources`` (already scoped to the user)."""
    now = now or timezone.now()
    states = dict.fromkeys((rules.GREEN, rules.YELLOW, rules.RED), 0)
    visibility = dict.fromkeys((rules.OK, rules.LOST), 0)
    rows = resources.order_by().values_list(
        "freshness_seconds",
        "status__state",
        "status__visibility",
        "status__observed_at",
        # the read-time reasons: drill programme and recorded vs observed primary site
        "tier",
        "last_passed_drill_at",
        "created_at",
        "primary_site_id",
        "dr_site_id",
        "current_site_id",
        "current_site_changed_at",
        "status__primary_role",
        "status__dr_role",
    )
    total = 0
    for freshness, state, vis, observed_at, tier, drilled, created, *site in rows:
        if state is None:  # no status row yet: never observed
            stored = rules.Evaluation(rules.RED, rules.LOST)
        else:
            stored = rules.Evaluation(state, vis)
        primary_id, dr_id, current_id, current_since, primary_role, dr_role = site
        shown = rules.at_read_time(
            stored,
            observed_at,
            freshness,
            now,
            drill=readiness.drill_input(tier, drilled, created),
            site=readiness.site_input_by_id(
                primary_site_id=primary_id,
                dr_site_id=dr_id,
                current_site_id=current_id,
                primary_role=primary_role,
                dr_role=dr_role,
                observed_at=observed_at,
                current_since=current_since,
            ),
        )
        states[shown.state] = states.get(shown.state, 0) + 1
        visibility[shown.visibility] = visibility.get(shown.visibility, 0) + 1
        total += 1
    return {"total": total, "state": states, "visibility": visibility, "generated_at": now}


def ordered_members(group: ResourceGroup) -> list[Resource]:
    """Members in dependency order, using prefetched memberships when present (no N+1)."""
    memberships = sorted(group.memberships.all(), key=lambda m: (m.position, m.pk))
    return [m.resource for m in memberships]


def group_status(
    members: Sequence[Resource], now: datetime | None = None
) -> tuple[rules.Evaluation, list[tuple[Resource, rules.Evaluation]]]:
    """A group's rolled-up status and each member's current status, in member order."""
    now = now or timezone.now()
    per_member = [(r, current_status(r, now)) for r in members]
    return rules.rollup([(r.name, e) for r, e in per_member]), per_member


@dataclass(frozen=True)
class BoardRow:
    resource: Resource
    evaluation: rules.Evaluation
    age_seconds: float | None

    @property
    def status(self) -> Any:
        return getattr(self.resource, "status", None)


def board_rows(resources: Iterable[Resource], now: datetime | None = None) -> list[BoardRow]:
    """The status board: worst first, then by name."""
    now = now or timezone.now()
    rows = []
    for resource in resources:
        status = getattr(resource, "status", None)
        observed_at = status.observed_at if status is not None else None
        age = (now - observed_at).total_seconds() if observed_at else None
        rows.append(BoardRow(resource, current_status(resource, now), age))
    rank = {rules.RED: 0, rules.YELLOW: 1, rules.GREEN: 2}
    rows.sort(key=lambda r: (rank.get(r.evaluation.state, 0), r.resource.name))
    return rows


# --- retention --------------------------------------------------------------------------------

_CHUNK = timedelta(hours=1)  # one transaction per hour of raw history
_STATE_RANK = {rules.GREEN: 0, rules.YELLOW: 1, rules.RED: 2}


def _bucket_start(at: datetime) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % BUCKET_SECONDS, tz=UTC)


def _merge(
    bucket: ObservationRollup, lag: float | None, lag_bytes: int | None, state: str, visible: bool
) -> None:
    if lag is not None:
        n = bucket._lag_count
        bucket.lag_seconds_avg = ((bucket.lag_seconds_avg or 0.0) * n + lag) / (n + 1)
        bucket._lag_count = n + 1
        low, high = bucket.lag_seconds_min, bucket.lag_seconds_max
        bucket.lag_seconds_min = lag if low is None else min(low, lag)
        bucket.lag_seconds_max = lag if high is None else max(high, lag)
    if lag_bytes is not None:
        bucket.lag_bytes_max = max(bucket.lag_bytes_max or 0, lag_bytes)
    if _STATE_RANK.get(state, 2) > _STATE_RANK.get(bucket.worst_state, 0):
        bucket.worst_state = state
    bucket.invisible_samples += 0 if visible else 1
    bucket.samples += 1


@transaction.atomic
def _roll_up_chunk(start: datetime, end: datetime) -> tuple[int, int]:
    samples = ObservationSample.objects.filter(at__gte=start, at__lt=end)
    existing = ObservationRollup.objects.filter(
        bucket_seconds=BUCKET_SECONDS, bucket_start__gte=start, bucket_start__lt=end
    )
    buckets: dict[tuple[int, datetime], ObservationRollup] = {}
    for bucket in existing:  # only when late samples land in a bucket already rolled up
        # Samples with a lag are the visible ones (an invisible attempt has no lag).
        has_lag = bucket.lag_seconds_avg is not None
        bucket._lag_count = bucket.samples - bucket.invisible_samples if has_lag else 0
        buckets[(bucket.resource_id, bucket.bucket_start)] = bucket
    rows = samples.values_list("resource_id", "at", "lag_seconds", "lag_bytes", "state", "visible")
    for rid, at, lag, lag_bytes, state, visible in rows.iterator(chunk_size=20_000):
        key = (rid, _bucket_start(at))
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = ObservationRollup(
                resource_id=rid,
                bucket_seconds=BUCKET_SECONDS,
                bucket_start=key[1],
                samples=0,
                worst_state=rules.GREEN,
                invisible_samples=0,
            )
            bucket._lag_count = 0
        _merge(bucket, lag, lag_bytes, state, visible)
    existing.delete()
    ObservationRollup.objects.bulk_create(buckets.values(), batch_size=2000)
    deleted, _ = samples.delete()
    return len(buckets), deleted


def roll_up_history(
    *,
    now: datetime | None = None,
    raw_hours: float | None = None,
    rollup_days: float | None = None,
    max_chunks: int = 72,
) -> dict[str, int]:
    """Retention: raw samples older than the raw window become 5-minute rollups and are deleted;
    rollups older than the rollup window are deleted. Works an hour of history per transaction
    and at most ``max_chunks`` hours per call, so a long backlog is worked off over several runs.
    """
    now = now or timezone.now()
    if raw_hours is None:
        raw_hours = float(getattr(settings, "BC_HISTORY_RAW_HOURS", 48))
    if rollup_days is None:
        rollup_days = float(getattr(settings, "BC_HISTORY_ROLLUP_DAYS", 90))
    cutoff = _bucket_start(now - timedelta(hours=raw_hours))
    totals = {"buckets": 0, "samples_deleted": 0, "rollups_deleted": 0}
    oldest = ObservationSample.objects.filter(at__lt=cutoff).aggregate(m=Min("at"))["m"]
    start = _bucket_start(oldest) if oldest else cutoff
    for _ in range(max_chunks):
        if start >= cutoff:
            break
        end = min(start + _CHUNK, cutoff)
        buckets, deleted = _roll_up_chunk(start, end)
        totals["buckets"] += buckets
        totals["samples_deleted"] += deleted
        start = end
    expired = ObservationRollup.objects.filter(bucket_start__lt=now - timedelta(days=rollup_days))
    totals["rollups_deleted"], _ = expired.delete()
    return totals
