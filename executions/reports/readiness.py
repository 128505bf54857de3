"""The readiness report for a period: per resource and per tier, time spent green, yellow, red and
without visibility, RPO breaches, the drills run (the drill scorecard) and which resources are
overdue a drill now.

Time is counted from the stored status history (raw samples and 5-minute rollups, see
``inventory.history``) by ``executions.reports.timeline``; its docstring says exactly how.
Everything is limited to what the user may see: resources through ``inventory.selectors``,
drills through the requests they belong to (``approvals.selectors``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from approvals import selectors as approval_selectors
from approvals.choices import RequestKind
from executions.choices import ExecutionState
from executions.models import Execution, ExecutionStep
from executions.reports import timeline
from inventory import history
from inventory.models import ObservationRollup, ObservationSample, Resource
from inventory.selectors import resources_for

FORMAT = "bcservice.readiness"
VERSION = 1
DEFAULT_PERIOD = timedelta(days=30)
# Rollups are kept 90 days (BC_HISTORY_ROLLUP_DAYS): a longer period would only add unobserved time.
MAX_PERIOD = timedelta(days=92)
DRILL_OVERDUE = "drill_overdue"
_SAMPLE_FIELDS = ("resource_id", "at", "lag_seconds", "state", "visible")
_ROLLUP_FIELDS = (
    "resource_id",
    "bucket_start",
    "lag_seconds_max",
    "worst_state",
    "invisible_samples",
    "samples",
)


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime


def readiness_report(
    user: Any, period: Period, *, tier: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The report as plain JSON-ready data (times ISO 8601, durations in seconds)."""
    now = now or timezone.now()
    resources = list(
        resources_for(user)
        .select_related("status", "current_site")
        .filter(**({"tier": tier} if tier is not None else {}))
        .order_by("pk")
    )
    drills = _drills(user, period, tier)
    drills_by_resource = _drills_by_resource(drills)
    rows = [
        _resource_row(resource, points, period, now, drills_by_resource)
        for resource, points in _points(resources, period)
    ]
    rows.sort(key=lambda r: (r["tier"], r["resource"]))
    return {
        "report": {
            "format": FORMAT,
            "version": VERSION,
            "generated_at": now.isoformat(),
            "since": period.since.isoformat(),
            "until": period.until.isoformat(),
            "period_seconds": (period.until - period.since).total_seconds(),
            "tier": tier,
        },
        "resources": rows,
        "tiers": _tiers(rows, drills),
        "drills": [_drill_row(d) for d in drills],
        "drill_overdue": [
            {"resource": r["resource"], "tier": r["tier"], "message": r["drill_overdue"]}
            for r in rows
            if r["drill_overdue"] is not None
        ],
    }


# --- status history ------------------------------------------------------------------------


def _points(
    resources: list[Resource], period: Period
) -> Iterator[tuple[Resource, list[timeline.HistoryPoint]]]:
    """Each resource with its points, in ``resources`` order (which must be by id): two ordered
    streams are read side by side, so memory holds one resource's history at a time.

    The read starts early enough to include the point that was current at ``since``: a raw
    sample counts for at most ``freshness_seconds``, a rollup for its bucket."""
    if not resources:
        return
    ids = [r.pk for r in resources]
    reach = max([r.freshness_seconds for r in resources] + [history.BUCKET_SECONDS])
    start = period.since - timedelta(seconds=reach)
    raw = (
        ObservationSample.objects.filter(resource_id__in=ids, at__gte=start, at__lt=period.until)
        .order_by("resource_id", "at")
        .values_list(*_SAMPLE_FIELDS)
        .iterator(chunk_size=5000)
    )
    rolled = (
        ObservationRollup.objects.filter(
            resource_id__in=ids,
            bucket_seconds=history.BUCKET_SECONDS,
            bucket_start__gte=start,
            bucket_start__lt=period.until,
        )
        .order_by("resource_id", "bucket_start")
        .values_list(*_ROLLUP_FIELDS)
        .iterator(chunk_size=5000)
    )
    raw_by = itertools.groupby(raw, key=lambda row: row[0])
    rolled_by = itertools.groupby(rolled, key=lambda row: row[0])
    raw_next, rolled_next = next(raw_by, None), next(rolled_by, None)
    for resource in resources:
        points: list[timeline.HistoryPoint] = []
        if raw_next is not None and raw_next[0] == resource.pk:
            points += [
                timeline.HistoryPoint(at, state, 1.0 if visible else 0.0, lag)
                for _, at, lag, state, visible in raw_next[1]
            ]
            raw_next = next(raw_by, None)
        if rolled_next is not None and rolled_next[0] == resource.pk:
            points += [
                timeline.HistoryPoint(
                    at, state, (n - invisible) / n if n else 0.0, lag, history.BUCKET_SECONDS
                )
                for _, at, lag, state, invisible, n in rolled_next[1]
            ]
            rolled_next = next(rolled_by, None)
        points.sort(key=lambda p: p.at)
        yield resource, points


def _resource_row(
    resource: Resource,
    points: list[timeline.HistoryPoint],
    period: Period,
    now: datetime,
    drills_by_resource: dict[int, list[Execution]],
) -> dict[str, Any]:
    # Before the resource existed there was nothing to be ready: its period starts then.
    start = max(period.since, resource.created_at)
    end = min(period.until, now)
    acc = timeline.account(
        points,
        start=start,
        end=end,
        freshness_seconds=resource.freshness_seconds,
        rpo_target_seconds=resource.rpo_target_seconds,
    )
    counted = max((end - start).total_seconds(), 0.0)
    mine = drills_by_resource.get(resource.pk, [])
    current = history.current_status(resource, now)
    overdue = next((r for r in current.reasons if r.code == DRILL_OVERDUE), None)
    return {
        "resource": resource.name,
        "id": resource.pk,
        "tier": resource.tier,
        "environment": resource.environment,
        "platform": resource.platform,
        "enabled": resource.enabled,
        "rpo_target_seconds": resource.rpo_target_seconds,
        "counted_from": start.isoformat() if counted else None,
        "counted_until": end.isoformat() if counted else None,
        "counted_seconds": counted,
        "seconds": {k: round(v, 3) for k, v in acc.seconds.items()},
        "percent": _percent(acc.seconds, counted),
        "unobserved_seconds": round(acc.unobserved_seconds, 3),
        "rpo_breaches": {
            "count": len(acc.breaches),
            "seconds": round(acc.breach_seconds, 3),
            "max_lag_seconds": max((b.max_lag_seconds for b in acc.breaches), default=None),
            "periods": [
                {
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "seconds": round(b.seconds, 3),
                    "max_lag_seconds": b.max_lag_seconds,
                }
                for b in acc.breaches[: timeline.MAX_BREACHES_LISTED]
            ],
            "more": max(len(acc.breaches) - timeline.MAX_BREACHES_LISTED, 0),
        },
        "drills": {
            "run": len(mine),
            "passed": sum(1 for d in mine if d.state == ExecutionState.SUCCEEDED),
            "failed": sum(1 for d in mine if d.state == ExecutionState.FAILED),
        },
        "status_now": current.state,
        "drill_overdue": overdue.message if overdue is not None else None,
    }


def _percent(seconds: dict[str, float], total: float) -> dict[str, float | None]:
    return {k: (round(100.0 * v / total, 2) if total else None) for k, v in seconds.items()}


# --- drills --------------------------------------------------------------------------------


def _drills(user: Any, period: Period, tier: int | None) -> list[Execution]:
    """Drill executions started in the period, on requests the user may see."""
    qs: QuerySet[Execution] = (
        Execution.objects.filter(
            kind=RequestKind.DRILL,
            request__in=approval_selectors.requests_for(user).values("pk"),
            started_at__gte=period.since,
            started_at__lt=period.until,
        )
        .select_related("request__resource", "request__group", "started_by")
        .order_by("started_at", "pk")
    )
    drills = list(qs)
    if tier is not None:
        drills = [d for d in drills if _scope(d)[1] == tier]
    return drills


def _scope(execution: Execution) -> tuple[str, int]:
    request = execution.request
    scope = request.resource if request.resource_id else request.group
    return scope.name, scope.tier


def _drills_by_resource(drills: list[Execution]) -> dict[int, list[Execution]]:
    by_id = {d.pk: d for d in drills}
    out: dict[int, list[Execution]] = {}
    pairs = (
        ExecutionStep.objects.filter(execution_id__in=list(by_id))
        .order_by("execution_id", "resource_id")
        .values_list("resource_id", "execution_id")
        .distinct()
    )
    for resource_id, execution_id in pairs:
        out.setdefault(resource_id, []).append(by_id[execution_id])
    return out


def _drill_row(execution: Execution) -> dict[str, Any]:
    name, tier = _scope(execution)
    found = (execution.evidence or {}).get("resources") or {}
    if execution.state == ExecutionState.SUCCEEDED:
        result = "pass"
    elif execution.state == ExecutionState.FAILED:
        result = "fail"
    else:
        result = "in progress"
    return {
        "execution": execution.pk,
        "request": execution.request_id,
        "scope": name,
        "tier": tier,
        "started_by": execution.started_by.get_username(),
        "started_at": execution.started_at.isoformat() if execution.started_at else None,
        "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
        "state": execution.state,
        "result": result,
        "reason": execution.state_reason,
        "resources": [
            {
                "resource": resource,
                "outcome": entry.get("outcome"),
                "rpo_measured_seconds": (entry.get("evidence") or {}).get("rpo_measured_seconds"),
                "rto_measured_seconds": (entry.get("evidence") or {}).get("rto_measured_seconds"),
                "conclusion": (entry.get("conclusion") or {}).get("text"),
            }
            for resource, entry in found.items()
        ],
    }


# --- per tier ------------------------------------------------------------------------------


def _tiers(rows: list[dict[str, Any]], drills: list[Execution]) -> list[dict[str, Any]]:
    """Sums over each tier's resources: times are resource-seconds (two resources for an hour
    each are two hours), so the percentages weigh every resource by the time it was counted."""
    out = []
    for tier_value in sorted({r["tier"] for r in rows} | {_scope(d)[1] for d in drills}):
        mine = [r for r in rows if r["tier"] == tier_value]
        seconds = {k: round(sum(r["seconds"][k] for r in mine), 3) for k in timeline.CATEGORIES}
        counted = sum(r["counted_seconds"] for r in mine)
        tier_drills = [d for d in drills if _scope(d)[1] == tier_value]
        out.append(
            {
                "tier": tier_value,
                "resources": len(mine),
                "counted_seconds": counted,
                "seconds": seconds,
                "percent": _percent(seconds, counted),
                "unobserved_seconds": round(sum(r["unobserved_seconds"] for r in mine), 3),
                "rpo_breaches": sum(r["rpo_breaches"]["count"] for r in mine),
                "rpo_breach_seconds": round(sum(r["rpo_breaches"]["seconds"] for r in mine), 3),
                "drills_run": len(tier_drills),
                "drills_passed": sum(1 for d in tier_drills if d.state == ExecutionState.SUCCEEDED),
                "drills_failed": sum(1 for d in tier_drills if d.state == ExecutionState.FAILED),
                "drill_overdue": sum(1 for r in mine if r["drill_overdue"] is not None),
            }
        )
    return out
