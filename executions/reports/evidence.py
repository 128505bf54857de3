"""The evidence report of one request: what was asked, who approved it, what ran, what data could
have been lost, and where all of it sits in the signed audit chain.

Everything comes from stored records (the request with its frozen policy and votes, the
execution with its steps and evidence, the audit log); nothing asks a target. A request that
never ran, or is still running, gets a report that says so instead of an error.

The data-loss wording is ``executions.evidence.conclusion`` (detailed-design.md §5); this module
only adds the overall verdict for a group (the least reassuring member's) and the "never ran"
sentence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from approvals import selectors as approval_selectors
from approvals.models import ExecutionRequest
from approvals.scope import members as scope_members
from audit import selectors as audit_selectors
from executions import evidence
from executions.choices import StepPhase, StepState
from executions.models import Execution, ExecutionStep

FORMAT = "bcservice.evidence"
VERSION = 1
REQUEST_TYPE = ExecutionRequest._meta.label_lower
EXECUTION_TYPE = Execution._meta.label_lower
# The least reassuring conclusion wins for the request as a whole.
_CONCLUSION_RANK = {
    "caught_up": 0,
    "drill_measured": 0,
    "potential_loss": 1,
    "drill_unmeasured": 2,
    "marker_unavailable": 2,
}
NOT_RUN = {
    "code": "not_run",
    "text": "The request never ran: no step was executed on any target, so there is no "
    "data-loss evidence to report.",
}
MARKER_KEYS = (
    evidence.MARKER_BEFORE,
    evidence.MARKER_AFTER,
    evidence.CAUGHT_UP_TO,
    evidence.LAST_MARKERS,
    evidence.HEARTBEAT_AT,
    evidence.MARKER_UNAVAILABLE,
)
MEASURED_KEYS = {
    "rpo_seconds": evidence.RPO_MEASURED_SECONDS,
    "rto_seconds": evidence.RTO_MEASURED_SECONDS,
    "write_unavailable_seconds": evidence.WRITE_UNAVAILABLE_SECONDS,
    "potential_loss_window_seconds": evidence.LOSS_WINDOW_SECONDS,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def evidence_report(
    request: ExecutionRequest, *, now: datetime | None = None, generated_by: str = ""
) -> dict[str, Any]:
    """The whole report as plain JSON-ready data (times as ISO 8601 strings)."""
    now = now or timezone.now()
    execution = Execution.objects.filter(request=request).select_related("started_by").first()
    steps = (
        list(execution.steps.select_related("resource").order_by("position"))
        if execution is not None
        else []
    )
    resources = _resources(execution, steps)
    return {
        "report": {
            "format": FORMAT,
            "version": VERSION,
            "generated_at": now.isoformat(),
            "generated_by": generated_by,
        },
        "request": _request(request),
        "scope": _scope(request),
        "policy": _policy(request),
        "approvals": [_approval(row) for row in approval_selectors.approval_rows(request)],
        "prechecks": _prechecks(request, execution, steps),
        "execution": _execution(execution),
        "steps": [_step(step) for step in steps],
        "resources": resources,
        "conclusion": _overall(execution, steps, resources),
        "audit": _audit(request, execution),
    }


def _request(request: ExecutionRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "kind": request.kind,
        "state": request.state,
        "state_reason": request.state_reason,
        "reason": request.reason,
        "change_ticket": request.change_ticket,
        "target_site": request.target_site_name,
        "requested_by": _user(request.requested_by),
        "created_at": _iso(request.created_at),
        "approved_at": _iso(request.approved_at),
        "started_at": _iso(request.started_at),
        "finished_at": _iso(request.finished_at),
        "breakglass_grant": request.breakglass_grant_id,
    }


def _scope(request: ExecutionRequest) -> dict[str, Any]:
    members = scope_members(resource=request.resource, group=request.group)
    if request.resource_id:
        kind, name, tier = "resource", request.resource.name, request.resource.tier
    else:
        kind, name, tier = "group", request.group.name, request.group.tier
    return {
        "type": kind,
        "name": name,
        "tier": tier,
        # Members as configured now; the steps below show which resources actually ran.
        "members": [
            {
                "position": position,
                "name": m.name,
                "platform": m.platform,
                "tier": m.tier,
                "environment": m.environment,
                "primary_site": m.primary_site.name,
                "dr_site": m.dr_site.name,
                "rpo_target_seconds": m.rpo_target_seconds,
            }
            for position, m in enumerate(members)
        ],
    }


def _policy(request: ExecutionRequest) -> dict[str, Any]:
    return {
        "snapshot": request.policy_snapshot,
        "fingerprint": request.policy_fingerprint,
        "required": approval_selectors.approvals_required(request),
    }


def _approval(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "approver": row["approver"],
        "decision": row["decision"],
        "at": _iso(row["at"]),
        "roles": row["roles"],
        "role_counted": row["role_counted"],
        "comment": row["comment"],
        "readiness": row["readiness"],
        "valid": row["valid"],
        "voided_at": _iso(row["voided_at"]),
        "void_reason": row["void_reason"],
    }


def _prechecks(
    request: ExecutionRequest, execution: Execution | None, steps: list[ExecutionStep]
) -> dict[str, Any]:
    on_demand = [
        {
            "seq": event.seq,
            "at": _iso(event.at),
            "by": event.actor_name,
            "ok": (event.after or {}).get("ok"),
            "results": [
                {"resource": r[0], "name": r[1], "ok": r[2]}
                for r in (event.after or {}).get("results", [])
                if isinstance(r, list) and len(r) == 3
            ],
        }
        for event in audit_selectors.events_about([(REQUEST_TYPE, request.pk)]).filter(
            action="request.prechecks_run"
        )
    ]
    overridden = [s for s in steps if s.state == StepState.OVERRIDDEN]
    return {
        "on_demand": on_demand,
        "at_start": [_step(s) for s in steps if s.phase == StepPhase.PRECHECK],
        "overrides": {
            "chosen": list(execution.overrides) if execution is not None else [],
            "reason": execution.override_reason if execution is not None else "",
            "used": [
                {"resource": s.resource.name, "step": s.name, "detail": s.detail}
                for s in overridden
            ],
        },
    }


def _execution(execution: Execution | None) -> dict[str, Any] | None:
    if execution is None:
        return None
    return {
        "id": execution.pk,
        "kind": execution.kind,
        "state": execution.state,
        "state_reason": execution.state_reason,
        "started_by": _user(execution.started_by),
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "finished_at": _iso(execution.finished_at),
        "total_seconds": (execution.evidence or {}).get("total_seconds"),
        "runs": execution.runs,
    }


def _step(step: ExecutionStep) -> dict[str, Any]:
    return {
        "position": step.position,
        "resource": step.resource.name,
        "name": step.name,
        "phase": step.phase,
        "state": step.state,
        "changes_state": step.changes_state,
        "started_at": _iso(step.started_at),
        "finished_at": _iso(step.finished_at),
        "duration_seconds": step.duration_seconds,
        "attempts": step.attempts,
        "detail": step.detail,
        "data": step.data,
    }


def _resources(execution: Execution | None, steps: list[ExecutionStep]) -> list[dict[str, Any]]:
    """Per resource: outcome, markers before/after, the conclusion and what was measured.

    A finished execution carries what the runner concluded when it ended (``evidence``); an
    unfinished one is worked out from the steps so far and marked provisional."""
    if execution is None:
        return []
    stored = (execution.evidence or {}).get("resources") or {}
    rows = []
    for name in dict.fromkeys(s.resource.name for s in steps):
        mine = [s for s in steps if s.resource.name == name]
        entry = stored.get(name)
        provisional = entry is None
        if provisional:
            found = evidence.collect(s.data for s in mine if s.state != StepState.PENDING)
            entry = {
                "outcome": "in progress",
                "evidence": found,
                "conclusion": evidence.conclusion(found, kind=execution.kind),
            }
        found = entry.get("evidence") or {}
        markers = {key: found.get(key) for key in MARKER_KEYS}
        # "Before" is the first marker reported (evidence.collect keeps the last of each key).
        first_before = next(
            (
                s.data[evidence.MARKER_BEFORE]
                for s in mine
                if isinstance(s.data, dict) and s.data.get(evidence.MARKER_BEFORE) is not None
            ),
            None,
        )
        if first_before is not None:
            markers[evidence.MARKER_BEFORE] = first_before
        rows.append(
            {
                "resource": name,
                "outcome": entry.get("outcome"),
                "provisional": provisional,
                "markers": markers,
                "conclusion": entry.get("conclusion"),
                "measured": {label: found.get(key) for label, key in MEASURED_KEYS.items()},
            }
        )
    return rows


def _overall(
    execution: Execution | None, steps: list[ExecutionStep], resources: list[dict[str, Any]]
) -> dict[str, Any]:
    if not any(s.started_at for s in steps):
        if execution is None:
            return dict(NOT_RUN)
        how = (
            f"ended ({execution.state}: {execution.state_reason})"
            if execution.finished_at
            else f"is {execution.state}"
        )
        return {
            "code": "not_run",
            "text": f"No step has run on any target: execution #{execution.pk} {how} before its "
            "first step, so there is no data-loss evidence to report.",
        }
    ranked = [r for r in resources if r["conclusion"]]
    worst = max(ranked, key=lambda r: _CONCLUSION_RANK.get(r["conclusion"].get("code"), 2))
    out = dict(worst["conclusion"])
    if len(resources) > 1:
        out["text"] = f"{worst['resource']}: {out['text']} (least reassuring of {len(resources)})"
    out["resource"] = worst["resource"]
    out["provisional"] = any(r["provisional"] for r in resources)
    return out


def _audit(request: ExecutionRequest, execution: Execution | None) -> dict[str, Any]:
    objects: list[tuple[str, str | int]] = [(REQUEST_TYPE, request.pk)]
    if execution is not None:
        objects.append((EXECUTION_TYPE, execution.pk))
    events = [
        {
            "seq": e.seq,
            "at": _iso(e.at),
            "action": e.action,
            "actor": e.actor_name,
            "object_type": e.object_type,
            "hash": e.hash,
        }
        for e in audit_selectors.events_about(objects).only(
            "seq", "at", "action", "actor_name", "object_type", "hash"
        )
    ]
    first = events[0]["seq"] if events else None
    last = events[-1]["seq"] if events else None
    checkpoint = audit_selectors.checkpoint_covering(last) if last is not None else None
    if last is None:
        coverage = "No audit event names this request."
    elif checkpoint is None:
        newest = audit_selectors.latest_checkpoint()
        where = (
            f"the newest signed checkpoint is at seq {newest.seq}"
            if newest is not None
            else "no checkpoint has been signed yet"
        )
        coverage = (
            "Not yet covered by a checkpoint: the last event about this request is "
            f"seq {last}; {where}."
        )
    else:
        coverage = (
            f"Events seq {first}..{last} are covered by the signed checkpoint at seq "
            f"{checkpoint.seq} (key {checkpoint.key_id})."
        )
    return {
        "objects": [{"object_type": t, "object_id": str(i)} for t, i in objects],
        "first_seq": first,
        "last_seq": last,
        "count": len(events),
        "events": events,
        "covered": checkpoint is not None,
        "checkpoint": checkpoint.document() if checkpoint is not None else None,
        "coverage": coverage,
    }
