"""The runner: takes up one execution and walks its steps in order, recording everything.

Safety rules it keeps (issue 5 and invariants 1, 3, 4, 10):
- One worker at a time owns an execution (a conditional UPDATE claims it; a heartbeat keeps the
  claim; a claim whose heartbeat is older than ``ORPHAN_AFTER`` may be taken over).
- A step found ``running`` when a worker takes the execution up may have run on a worker that
  died. A read-only check is simply run again. A state-changing step is first verified against
  the target: taken effect -> marked succeeded; not taken effect and idempotent -> run again;
  anything else -> the execution fails with a clear reason. Nothing state-changing runs twice
  blindly, and nothing is retried silently after a failure.
- Every step has a timeout; a state-changing step that times out fails the execution ("state
  unknown"), it is never retried.
- Each step's start and end, and every execution transition, is committed with its audit event.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from approvals.services import start as approval_start
from audit import services as audit
from audit.snapshot import json_safe
from connectors import secrets
from connectors.contract import ExecutionContext, PlanStep, StepResult, Verified
from executions import evidence, services
from executions.choices import ExecutionState, StepPhase, StepState
from executions.models import Execution, ExecutionStep
from executions.planning import plan_request
from notifications import services as notifications

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=2)
ORPHAN_AFTER = timedelta(seconds=15)
WORKER = "worker"


def new_owner() -> str:
    return f"runner-{uuid.uuid4().hex[:12]}"


def claim(execution_id: int, owner: str) -> bool:
    """Take the execution if nobody live holds it. Works on SQLite and PostgreSQL alike."""
    now = timezone.now()
    return bool(
        Execution.objects.filter(
            pk=execution_id, state__in=[ExecutionState.QUEUED, ExecutionState.RUNNING]
        )
        .filter(Q(owner="") | Q(heartbeat_at__lt=now - ORPHAN_AFTER) | Q(heartbeat_at=None))
        .update(owner=owner, heartbeat_at=now)
    )


@contextmanager
def heartbeat(execution_id: int, owner: str) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_EVERY.total_seconds()):
                try:
                    Execution.objects.filter(pk=execution_id, owner=owner).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:
                    # A missed beat only risks a takeover after ORPHAN_AFTER, which verifies
                    # the target first; it must never stop the beating (e.g. a busy SQLite).
                    logger.warning("heartbeat for execution %s missed", execution_id, exc_info=True)
        finally:
            close_old_connections()

    thread = threading.Thread(target=beat, name=f"heartbeat-{execution_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def run_execution(execution_id: int) -> str:
    """Entry point for the django-q2 task. Returns a short outcome for the task record."""
    owner = new_owner()
    if not claim(execution_id, owner):
        return "not claimed: finished, or owned by a live worker"
    try:
        with heartbeat(execution_id, owner):
            return _run(execution_id, owner)
    except Exception as exc:  # the record must end true even if the runner itself breaks
        logger.exception("runner failed for execution %s", execution_id)
        _finish(execution_id, succeeded=False, reason=f"runner error: {type(exc).__name__}")
        return "failed: runner error"


def _begin(execution_id: int) -> Execution:
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=execution_id)
        execution.runs += 1
        if execution.state == ExecutionState.QUEUED:
            services.transition(
                execution,
                ExecutionState.RUNNING,
                actor=WORKER,
                reason="started",
                runs=execution.runs,
            )
        else:
            execution.save(update_fields=["runs"])
            audit.record(
                action="execution.resumed",
                actor=WORKER,
                obj=execution,
                after={"runs": execution.runs, "reason": "taken up again after a worker stopped"},
            )
        return execution


def _run(execution_id: int, owner: str) -> str:
    execution = _begin(execution_id)
    plans = {plan.resource.pk: plan for plan in plan_request(execution.request)}
    for step in execution.steps.order_by("position"):
        if step.state in (StepState.SUCCEEDED, StepState.OVERRIDDEN, StepState.SKIPPED):
            continue
        if step.pause_before and step.position not in execution.context.get(
            "continued_positions", []
        ):
            _pause(execution, step)
            return "paused"
        plan = plans[step.resource_id]
        plan_step = next(s for s in plan.steps if s.name == step.name)
        ctx = _context(execution, plan, step)
        if step.state == StepState.RUNNING and step.changes_state:
            decision = _recover_step(execution, step, plan_step, ctx)
            if decision == "done":
                continue
            if decision == "fail":
                return "failed"
        outcome = _run_step(execution, step, plan_step, ctx)
        if outcome == "failed":
            return "failed"
    _finish(execution.pk, succeeded=True, reason="all steps passed")
    return "succeeded"


def _context(execution: Execution, plan: Any, step: ExecutionStep) -> ExecutionContext:
    state = execution.context.setdefault("resources", {}).setdefault(str(step.resource_id), {})
    return ExecutionContext(
        target=plan.target,
        kind=execution.kind,
        promote_site=plan.promote_site,
        overrides=frozenset(execution.overrides),
        state=state,
        log=lambda message: logger.info("execution %s: %s", execution.pk, message),
    )


def _recover_step(
    execution: Execution, step: ExecutionStep, plan_step: PlanStep, ctx: ExecutionContext
) -> str:
    """A state-changing step was running when its worker stopped. Ask the target what happened."""
    verdict = Verified.UNKNOWN
    error = ""
    if plan_step.verify is not None:
        try:
            verdict = _call_with_timeout(plan_step.verify, ctx, plan_step.timeout_seconds)
        except Exception as exc:
            error = _clean(exc, ctx)
    with transaction.atomic():
        audit.record(
            action="execution.step_verified",
            actor=WORKER,
            obj=execution,
            after={"step": step.name, "resource": step.resource_id, "verdict": str(verdict)},
        )
    if verdict == Verified.DONE:
        _end_step(execution, step, StepState.SUCCEEDED, "verified after worker restart: done", {})
        return "done"
    if verdict == Verified.NOT_DONE and step.idempotent:
        return "rerun"
    if verdict == Verified.UNKNOWN:
        seen = "the target could not confirm either way" + (f" ({error})" if error else "")
    else:
        seen = "the target says it did not complete and the step is not safe to repeat"
    reason = (
        f"Step '{step.name}' may have run when the previous worker stopped; {seen}. "
        "Stopped for a manual check; nothing further was run."
    )
    _end_step(execution, step, StepState.FAILED, reason, {"verdict": str(verdict)})
    _finish(execution.pk, succeeded=False, reason=reason)
    return "fail"


def _run_step(
    execution: Execution, step: ExecutionStep, plan_step: PlanStep, ctx: ExecutionContext
) -> str:
    with transaction.atomic():
        step.state, step.started_at, step.finished_at = StepState.RUNNING, timezone.now(), None
        step.attempts += 1
        step.save(update_fields=["state", "started_at", "finished_at", "attempts"])
        audit.record(
            action="execution.step_started",
            actor=WORKER,
            obj=execution,
            after={"step": step.name, "phase": step.phase, "resource": step.resource_id},
        )
    try:
        result = _call_with_timeout(plan_step.run, ctx, step.timeout_seconds)
    except TimeoutError:
        result = StepResult(
            ok=False,
            detail=f"timed out after {step.timeout_seconds:g} s"
            + ("; the change may still take effect: state unknown" if step.changes_state else ""),
        )
    except Exception as exc:
        result = StepResult(ok=False, detail=f"error: {_clean(exc, ctx)}")
    scrub = _scrub_values(ctx)
    result.detail = secrets.sanitize(result.detail, scrub)
    result.data = secrets.sanitize(result.data, scrub)
    _save_context(execution)
    if result.ok:
        _end_step(execution, step, StepState.SUCCEEDED, result.detail, result.data)
        return "ok"
    if step.phase == StepPhase.PRECHECK and _may_override(execution, step, result):
        _end_step(
            execution,
            step,
            StepState.OVERRIDDEN,
            f"{result.detail} — overridden by the operator: {execution.override_reason}",
            result.data,
            action="execution.precheck_overridden",
        )
        return "ok"
    _end_step(execution, step, StepState.FAILED, result.detail, result.data)
    where = "before any change" if step.phase == StepPhase.PRECHECK else "safely"
    _finish(execution.pk, succeeded=False, reason=f"{step.name} failed ({where}): {result.detail}")
    return "failed"


def _may_override(execution: Execution, step: ExecutionStep, result: StepResult) -> bool:
    if not result.overridable or step.name not in execution.overrides:
        return False
    if not result.override_needs_policy:
        return True
    return bool(execution.request.policy_snapshot.get("allow_precheck_override", False))


def _call_with_timeout(fn: Any, ctx: ExecutionContext, timeout: float) -> Any:
    """Run ``fn(ctx)`` in a thread and stop waiting after ``timeout`` seconds."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(ctx)
        except BaseException as exc:
            box["error"] = exc
        finally:
            close_old_connections()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]


def _scrub_values(ctx: ExecutionContext) -> set[str]:
    return set(getattr(ctx.target.credentials, "seen", ()))


def _clean(exc: BaseException, ctx: ExecutionContext) -> str:
    return secrets.sanitize(f"{type(exc).__name__}: {exc}", _scrub_values(ctx))[:500]


def _end_step(
    execution: Execution,
    step: ExecutionStep,
    state: str,
    detail: str,
    data: dict[str, Any],
    *,
    action: str = "execution.step_finished",
) -> None:
    safe = json_safe(secrets.sanitize(data))
    with transaction.atomic():
        step.state, step.finished_at = state, timezone.now()
        step.detail, step.data = secrets.sanitize(detail)[:4000], safe
        step.save(update_fields=["state", "finished_at", "detail", "data"])
        audit.record(
            action=action,
            actor=WORKER,
            obj=execution,
            after={
                "step": step.name,
                "phase": step.phase,
                "resource": step.resource_id,
                "state": state,
                "detail": step.detail,
                "data": safe,
            },
        )


def _save_context(execution: Execution) -> None:
    Execution.objects.filter(pk=execution.pk).update(context=json_safe(execution.context))


def _pause(execution: Execution, step: ExecutionStep) -> None:
    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        context = dict(locked.context)
        context["paused_at"] = step.position
        services.transition(
            locked,
            ExecutionState.PAUSED,
            actor=WORKER,
            reason=f"waiting for an operator before '{step.name}'",
            context=context,
            owner="",
        )


def _evidence(execution: Execution) -> dict[str, Any]:
    by_resource: dict[str, Any] = {}
    steps = list(execution.steps.select_related("resource").order_by("position"))
    for resource_id in dict.fromkeys(s.resource_id for s in steps):
        mine = [s for s in steps if s.resource_id == resource_id]
        found = evidence.collect(s.data for s in mine if s.state != StepState.PENDING)
        states = {s.state for s in mine}
        if states <= {StepState.SUCCEEDED, StepState.OVERRIDDEN}:
            outcome = "done"
        elif states == {StepState.SKIPPED}:
            outcome = "not started"
        else:
            outcome = "failed" if StepState.FAILED in states else "partly done"
        by_resource[mine[0].resource.name] = {
            "outcome": outcome,
            "evidence": found,
            "conclusion": evidence.conclusion(found, kind=execution.kind),
        }
    return by_resource


def _finish(execution_id: int, *, succeeded: bool, reason: str) -> None:
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=execution_id)
        if execution.state in (ExecutionState.SUCCEEDED, ExecutionState.FAILED):
            return
        services.skip_remaining(execution)
        total = (timezone.now() - (execution.started_at or timezone.now())).total_seconds()
        summary = {"resources": _evidence(execution), "total_seconds": round(total, 3)}
        services.transition(
            execution,
            ExecutionState.SUCCEEDED if succeeded else ExecutionState.FAILED,
            actor=WORKER,
            reason=reason,
            evidence=json_safe(summary),
            owner="",
        )
        # Where the primary is now and the last passed drill, in the same transaction.
        services.record_outcomes(execution, actor=WORKER, at=execution.finished_at)
        services.release_locks(execution)
        approval_start.request_mark_finished(
            execution.request, actor=WORKER, succeeded=succeeded, detail=reason[:500]
        )
        kind = "execution.succeeded" if succeeded else "execution.failed"
        request = execution.request
        transaction.on_commit(
            lambda: notifications.notify(
                kind,
                subject=f"{execution.kind} {services.scope_name(request)}: "
                f"{'succeeded' if succeeded else 'FAILED'} — {reason[:200]}",
                tier=services._tier(request),
                environment=services._environment(request),
                payload={"execution": execution.pk, "request": request.pk},
                resource_id=request.resource_id,
            )
        )
