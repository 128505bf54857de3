"""Auditor export of execution requests with their approvals (``GET /api/v1/requests/export/``).

One row per request: what was asked (kind, scope, target, reason, change ticket), by whom, the
policy it was bound to (snapshot and fingerprint), every state stamp, and every vote with who,
the role it counted as, decision, comment, time and the readiness the approver saw. Rows are
read in keyset batches with their votes prefetched, streamed by ``audit.exports``, and linked to
the audit chain (the events about each request and the checkpoint that covers them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from approvals import selectors
from approvals.models import ExecutionRequest
from audit import exports
from audit.chain import format_time

KIND = "approvals.requests"
OBJECT_TYPE = "approvals.executionrequest"
BATCH = 500
COLUMNS = (
    "id",
    "kind",
    "state",
    "state_reason",
    "state_changed_at",
    "scope",
    "resource_id",
    "resource",
    "group_id",
    "group",
    "target_site",
    "requested_by",
    "reason",
    "change_ticket",
    "created_at",
    "expires_at",
    "approved_at",
    "started_at",
    "finished_at",
    "policy",
    "policy_fingerprint",
    "policy_snapshot",
    "scope_fingerprint",
    "approvals_required",
    "approvals",
    "breakglass_grant",
    "flap_acknowledged_by",
    "flap_acknowledged_at",
    "flap_acknowledgement",
)


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def requests_matching(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str = "",
    state: str = "",
    resource: int | None = None,
    group: int | None = None,
) -> QuerySet[ExecutionRequest]:
    """Requests created in [since, until) of a kind, state and scope (all optional)."""
    queryset = ExecutionRequest.objects.all()
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    if kind:
        queryset = queryset.filter(kind=kind)
    if state:
        queryset = queryset.filter(state=state)
    if resource is not None:
        queryset = queryset.filter(resource_id=resource)
    if group is not None:
        queryset = queryset.filter(group_id=group)
    return queryset


def request_row(request: ExecutionRequest) -> tuple[Any, ...]:
    """One request's cells in ``COLUMNS`` order (reads only what ``requests_export`` fetched)."""
    approvals = [
        {**vote, "at": _time(vote["at"]), "voided_at": _time(vote["voided_at"])}
        for vote in selectors.approval_rows(request)
    ]
    resource, group = request.resource, request.group
    values = {
        "id": request.pk,
        "kind": request.kind,
        "state": request.state,
        "state_reason": request.state_reason,
        "state_changed_at": _time(request.state_changed_at),
        "scope": request.scope_name,
        "resource_id": request.resource_id,
        "resource": resource.name if resource is not None else None,
        "group_id": request.group_id,
        "group": group.name if group is not None else None,
        "target_site": request.target_site.name,
        "requested_by": _user(request.requested_by),
        "reason": request.reason,
        "change_ticket": request.change_ticket,
        "created_at": _time(request.created_at),
        "expires_at": _time(request.expires_at),
        "approved_at": _time(request.approved_at),
        "started_at": _time(request.started_at),
        "finished_at": _time(request.finished_at),
        "policy": request.policy_snapshot.get("name") if request.policy_snapshot else None,
        "policy_fingerprint": request.policy_fingerprint,
        "policy_snapshot": request.policy_snapshot,
        "scope_fingerprint": request.scope_fingerprint,
        "approvals_required": selectors.approvals_required(request),
        "approvals": approvals,
        "breakglass_grant": request.breakglass_grant_id,
        "flap_acknowledged_by": _user(request.flap_acknowledged_by),
        "flap_acknowledged_at": _time(request.flap_acknowledged_at),
        "flap_acknowledgement": request.flap_acknowledgement,
    }
    return tuple(values[name] for name in COLUMNS)


def requests_export(
    queryset: QuerySet[ExecutionRequest], *, filters: dict[str, Any]
) -> exports.Export:
    """The streamed export of ``queryset`` (see ``audit.exports.object_export``)."""
    queryset = queryset.select_related(
        "resource", "group", "target_site", "requested_by", "flap_acknowledged_by"
    ).prefetch_related("approvals__approver")
    return exports.object_export(
        kind=KIND,
        queryset=queryset,
        object_type=OBJECT_TYPE,
        columns=COLUMNS,
        to_row=request_row,
        filters=filters,
        filename="requests",
        batch=BATCH,
    )
