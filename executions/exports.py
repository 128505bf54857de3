"""Auditor export of executions with their steps (``GET /api/v1/executions/export/``).

One row per execution: the request it ran (kind, scope, target, change ticket, requester), who
started it, state and times, the operator's overrides, the outcome per resource and the evidence
(markers before/after, the data-loss conclusion, measured RPO/RTO), and every step with its
phase, state, times, detail and the data it reported. Rows are read in keyset batches with their
steps prefetched, streamed by ``audit.exports`` and linked to the audit chain (the events about
each execution, step events included, and the checkpoint that covers them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce

from audit import exports
from audit.chain import format_time
from executions.models import Execution, ExecutionStep

KIND = "executions.executions"
OBJECT_TYPE = "executions.execution"
BATCH = 200
COLUMNS = (
    "id",
    "request_id",
    "kind",
    "state",
    "state_reason",
    "scope",
    "resource_id",
    "resource",
    "group_id",
    "group",
    "target_site",
    "change_ticket",
    "requested_by",
    "started_by",
    "created_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "runs",
    "overrides",
    "override_reason",
    "outcome",
    "evidence",
    "steps",
)


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def executions_matching(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str = "",
    state: str = "",
    resource: int | None = None,
    group: int | None = None,
    request: int | None = None,
) -> QuerySet[Execution]:
    """Executions that started in [since, until) (queued, when they never started), of a kind,
    state and scope. ``resource`` matches a request on it and a group run with a step on it."""
    queryset = Execution.objects.all()
    if since is not None or until is not None:
        queryset = queryset.alias(_when=Coalesce("started_at", "created_at"))
        if since is not None:
            queryset = queryset.filter(_when__gte=since)
        if until is not None:
            queryset = queryset.filter(_when__lt=until)
    if kind:
        queryset = queryset.filter(kind=kind)
    if state:
        queryset = queryset.filter(state=state)
    if resource is not None:
        with_step = ExecutionStep.objects.filter(resource_id=resource).values("execution_id")
        queryset = queryset.filter(Q(request__resource_id=resource) | Q(pk__in=with_step))
    if group is not None:
        queryset = queryset.filter(request__group_id=group)
    if request is not None:
        queryset = queryset.filter(request_id=request)
    return queryset


def step_row(step: ExecutionStep) -> dict[str, Any]:
    return {
        "position": step.position,
        "name": step.name,
        "description": step.description,
        "resource": step.resource.name,
        "phase": step.phase,
        "state": step.state,
        "changes_state": step.changes_state,
        "started_at": _time(step.started_at),
        "finished_at": _time(step.finished_at),
        "duration_seconds": step.duration_seconds,
        "attempts": step.attempts,
        "detail": step.detail,
        # What the step reported: markers, lag, measured times (the evidence's sources).
        "data": step.data,
    }


def execution_row(execution: Execution) -> tuple[Any, ...]:
    """One execution's cells in ``COLUMNS`` order (reads only what ``executions_export``
    fetched)."""
    request = execution.request
    resource, group = request.resource, request.group
    evidence = execution.evidence or {}
    resources = evidence.get("resources") or {}
    duration = None
    if execution.started_at and execution.finished_at:
        duration = (execution.finished_at - execution.started_at).total_seconds()
    values = {
        "id": execution.pk,
        "request_id": execution.request_id,
        "kind": execution.kind,
        "state": execution.state,
        "state_reason": execution.state_reason,
        "scope": request.scope_name,
        "resource_id": request.resource_id,
        "resource": resource.name if resource is not None else None,
        "group_id": request.group_id,
        "group": group.name if group is not None else None,
        "target_site": request.target_site.name,
        "change_ticket": request.change_ticket,
        "requested_by": request.requested_by.get_username(),
        "started_by": execution.started_by.get_username(),
        "created_at": _time(execution.created_at),
        "started_at": _time(execution.started_at),
        "finished_at": _time(execution.finished_at),
        "duration_seconds": duration,
        "runs": execution.runs,
        "overrides": execution.overrides,
        "override_reason": execution.override_reason,
        # Per resource: done / partly done / failed / not started, and the data-loss conclusion.
        "outcome": {
            name: {
                "outcome": found.get("outcome"),
                "conclusion": (found.get("conclusion") or {}).get("code"),
            }
            for name, found in resources.items()
        },
        "evidence": evidence,
        "steps": [step_row(step) for step in execution.steps.all()],
    }
    return tuple(values[name] for name in COLUMNS)


def executions_export(queryset: QuerySet[Execution], *, filters: dict[str, Any]) -> exports.Export:
    """The streamed export of ``queryset`` (see ``audit.exports.object_export``)."""
    queryset = queryset.select_related(
        "request__resource",
        "request__group",
        "request__target_site",
        "request__requested_by",
        "started_by",
    ).prefetch_related("steps__resource")
    return exports.object_export(
        kind=KIND,
        queryset=queryset,
        object_type=OBJECT_TYPE,
        columns=COLUMNS,
        to_row=execution_row,
        filters=filters,
        filename="executions",
        batch=BATCH,
    )
