"""Running a request's prechecks on demand (read-only) so people see them before starting."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import ExecutionRequest
from audit import services as audit
from audit.snapshot import json_safe
from connectors import secrets
from connectors.contract import ExecutionContext, NotSupported, Phase
from executions.planning import plan_request
from executions.runner import _call_with_timeout


def run_prechecks(*, actor: Any, request: ExecutionRequest) -> dict[str, Any]:
    """Run every precheck of the plan now; changes nothing on the targets."""
    started = timezone.now()
    try:
        plans = plan_request(request)
    except NotSupported as exc:
        return {"supported": False, "reason": str(exc), "results": [], "ok": False}
    results: list[dict[str, Any]] = []
    for plan in plans:
        ctx = ExecutionContext(
            target=plan.target, kind=request.kind, promote_site=plan.promote_site, state={}
        )
        for step in plan.steps:
            if step.phase != Phase.PRECHECK:
                continue
            began = timezone.now()
            try:
                result = _call_with_timeout(step.run, ctx, step.timeout_seconds)
                row = {
                    "ok": result.ok,
                    "detail": result.detail,
                    "data": result.data,
                    "overridable": result.overridable,
                }
            except TimeoutError:
                row = {"ok": False, "detail": f"timed out after {step.timeout_seconds:g} s"}
            except Exception as exc:
                row = {"ok": False, "detail": f"error: {type(exc).__name__}: {exc}"}
            row.update(
                resource=plan.resource.name,
                name=step.name,
                description=step.description,
                seconds=round((timezone.now() - began).total_seconds(), 3),
            )
            results.append(
                json_safe(secrets.sanitize(row, getattr(plan.target.credentials, "seen", ())))
            )
    report = {
        "supported": True,
        "ok": all(r["ok"] for r in results),
        "ran_at": started.isoformat(),
        "results": results,
    }
    with transaction.atomic():
        audit.record(
            action="request.prechecks_run",
            actor=actor,
            obj=request,
            after={
                "ok": report["ok"],
                "results": [(r["resource"], r["name"], r["ok"]) for r in results],
            },
        )
    return report
