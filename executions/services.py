"""Starting, pausing/continuing and finishing executions. Each write records its audit event in
the same transaction; the run itself is queued on django-q2 after commit."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import ExecutionRequest
from approvals.services import start as approval_start
from audit import services as audit
from bcservice.api.exceptions import IllegalTransition
from connectors.contract import NotSupported
from executions.choices import ACTIVE, TRANSITIONS, ExecutionState, StepState
from executions.models import ActiveExecutionLock, Execution, ExecutionStep
from executions.planning import plan_request, scope_resources
from inventory import services as inventory
from notifications import services as notifications


class ExecutionConflict(IllegalTransition):
    """A resource in scope already has an active execution (HTTP 409)."""


def scope_name(request: ExecutionRequest) -> str:
    return request.resource.name if request.resource_id else request.group.name


def _validate_start(
    request: ExecutionRequest, confirm: str, overrides: list[str], override_reason: str
) -> None:
    errors: dict[str, list[str]] = {}
    if (confirm or "").strip() != scope_name(request):
        errors["confirm"] = [f"Type the exact name '{scope_name(request)}' to confirm."]
    if overrides and not (override_reason or "").strip():
        errors["override_reason"] = ["A reason is required when overriding a precheck."]
    if errors:
        raise ValidationError(errors)


def execution_start(
    *,
    actor: Any,
    request: ExecutionRequest,
    confirm: str,
    overrides: list[str] | None = None,
    override_reason: str = "",
) -> Execution:
    """Check, lock the scope's resources and queue the run. Raises ValidationError (400),
    RequestNotStartable or ExecutionConflict (409)."""
    overrides = sorted(set(overrides or []))
    _validate_start(request, confirm, overrides, override_reason)
    try:
        plans = plan_request(request)
    except NotSupported as exc:
        raise ValidationError({"kind": [str(exc)]}) from exc
    known = {step.name for plan in plans for step in plan.steps}
    unknown = [name for name in overrides if name not in known]
    if unknown:
        raise ValidationError({"overrides": [f"Not a step of this plan: {', '.join(unknown)}."]})
    with transaction.atomic():
        locked = approval_start.request_mark_running(request, actor=actor)
        execution = Execution.objects.create(
            request=locked,
            kind=locked.kind,
            started_by=actor,
            overrides=overrides,
            override_reason=override_reason.strip(),
        )
        for resource in scope_resources(locked):
            try:
                with transaction.atomic():
                    ActiveExecutionLock.objects.create(resource=resource, execution=execution)
            except IntegrityError:
                holder = ActiveExecutionLock.objects.filter(resource=resource).first()
                raise ExecutionConflict(
                    locked.state,
                    f"{resource.name} already has an active execution"
                    + (f" ({holder.execution_id})." if holder else "."),
                ) from None
        position = 0
        for plan in plans:
            for step in plan.steps:
                ExecutionStep.objects.create(
                    execution=execution,
                    position=position,
                    resource=plan.resource,
                    name=step.name,
                    description=step.description[:300],
                    phase=step.phase.value,
                    changes_state=step.changes_state,
                    idempotent=step.idempotent,
                    timeout_seconds=step.timeout_seconds,
                )
                position += 1
        audit.record(
            action="execution.queued",
            actor=actor,
            obj=execution,
            object_name=f"{locked.kind} {scope_name(locked)}",
            after={
                "request": locked.pk,
                "kind": locked.kind,
                "scope": scope_name(locked),
                "target_site": locked.target_site.name,
                "steps": position,
                "overrides": overrides,
                "override_reason": override_reason.strip(),
            },
        )
        if overrides:
            audit.record(
                action="execution.overrides_chosen",
                actor=actor,
                obj=execution,
                after={"overrides": overrides, "reason": override_reason.strip()},
            )
        transaction.on_commit(lambda: enqueue(execution.pk))
        transaction.on_commit(
            lambda: notifications.notify(
                "execution.started",
                subject=f"{locked.kind} of {scope_name(locked)} started by {actor}",
                tier=_tier(locked),
                environment=_environment(locked),
                payload={"execution": execution.pk, "request": locked.pk},
                resource_id=locked.resource_id,
            )
        )
    return execution


def enqueue(execution_id: int) -> None:
    from bcservice.jobs import enqueue as enqueue_job

    enqueue_job(
        "executions.tasks.run_execution", execution_id, task_name=f"execution-{execution_id}"
    )


def _tier(request: ExecutionRequest) -> int:
    return request.resource.tier if request.resource_id else request.group.tier


def _environment(request: ExecutionRequest) -> str:
    members = scope_resources(request)
    return members[0].environment if members else ""


def transition(
    execution: Execution, to_state: str, *, actor: Any, reason: str = "", **changes: Any
) -> Execution:
    """The only place that sets Execution.state; call under the row lock in a transaction."""
    if to_state not in TRANSITIONS[execution.state]:
        raise IllegalTransition(
            execution.state, f"An execution cannot move from {execution.state} to {to_state}."
        )
    before = {"state": execution.state}
    execution.state = to_state
    execution.state_reason = reason[:2000]
    for key, value in changes.items():
        setattr(execution, key, value)
    now = timezone.now()
    if to_state == ExecutionState.RUNNING and execution.started_at is None:
        execution.started_at = now
    if to_state in (ExecutionState.SUCCEEDED, ExecutionState.FAILED):
        execution.finished_at = now
    execution.save()
    audit.record(
        action=f"execution.{to_state}",
        actor=actor,
        obj=execution,
        before=before,
        after={"state": to_state, "reason": reason[:2000], **_jsonable(changes)},
    )
    return execution


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if isinstance(v, str | int | float | bool | list)}


@transaction.atomic
def execution_continue(*, actor: Any, execution: Execution) -> Execution:
    """An operator lets a paused execution go on past its pause point."""
    locked = Execution.objects.select_for_update().get(pk=execution.pk)
    if locked.state != ExecutionState.PAUSED:
        raise IllegalTransition(locked.state, "Only a paused execution can be continued.")
    context = dict(locked.context)
    context["continued_positions"] = sorted(
        {*context.get("continued_positions", []), locked.context.get("paused_at")} - {None}
    )
    transition(locked, ExecutionState.RUNNING, actor=actor, reason="continued", context=context)
    transaction.on_commit(lambda: enqueue(locked.pk))
    return locked


# Kinds whose success leaves the primary role at the request's target site.
_MOVING_KINDS = frozenset({"switchover", "failover", "failback"})
_DONE = frozenset({StepState.SUCCEEDED, StepState.OVERRIDDEN})


def record_outcomes(execution: Execution, *, actor: Any, at: Any) -> dict[str, list[str]]:
    """Tell the inventory what a finishing execution changed; call in the finish transaction.

    Per resource: when all of its steps are done (succeeded, or a precheck overridden by the
    operator), a switchover/failover/failback moved its primary role to the target site, and a
    drill passed. A resource with a failed or unrun step records nothing (its real state is
    then shown by monitoring: ``unexpected_primary_site`` if the primary did move).
    Returns {"moved": [...], "drilled": [...]} (resource names) for the audit trail.
    """
    done: dict[int, bool] = {}
    names: dict[int, str] = {}
    steps = execution.steps.values_list("resource_id", "resource__name", "state")
    for resource_id, name, state in steps:
        done[resource_id] = done.get(resource_id, True) and state in _DONE
        names[resource_id] = name
    request = execution.request
    outcome: dict[str, list[str]] = {"moved": [], "drilled": []}
    conclusions = {
        name: (data or {}).get("conclusion", {}).get("code", "")
        for name, data in (execution.evidence or {}).get("resources", {}).items()
    }
    for resource_id, all_done in done.items():
        if not all_done:
            continue
        if execution.kind in _MOVING_KINDS:
            resource = inventory.resource_record_move(
                actor=actor,
                resource_id=resource_id,
                site=request.target_site,
                kind=execution.kind,
                at=at,
                execution_id=execution.pk,
            )
            outcome["moved"].append(resource.name)
        elif execution.kind == "drill":
            resource = inventory.resource_record_drill(
                actor=actor,
                resource_id=resource_id,
                at=at,
                execution_id=execution.pk,
                conclusion=conclusions.get(names[resource_id], ""),
            )
            outcome["drilled"].append(resource.name)
    return outcome


def release_locks(execution: Execution) -> None:
    ActiveExecutionLock.objects.filter(execution=execution).delete()


def skip_remaining(execution: Execution) -> int:
    return execution.steps.filter(state=StepState.PENDING).update(state=StepState.SKIPPED)


def is_active(execution: Execution) -> bool:
    return execution.state in ACTIVE
