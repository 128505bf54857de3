"""Execution and step states, with the legal moves between them."""

from django.db import models


class ExecutionState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused (waiting for an operator)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


E = ExecutionState
ACTIVE = frozenset({E.QUEUED, E.RUNNING, E.PAUSED})
TERMINAL = frozenset({E.SUCCEEDED, E.FAILED})
TRANSITIONS: dict[str, frozenset[str]] = {
    E.QUEUED: frozenset({E.RUNNING, E.FAILED}),
    E.RUNNING: frozenset({E.RUNNING, E.PAUSED, E.SUCCEEDED, E.FAILED}),
    E.PAUSED: frozenset({E.RUNNING, E.FAILED}),
    E.SUCCEEDED: frozenset(),
    E.FAILED: frozenset(),
}


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    OVERRIDDEN = "overridden", "Failed, overridden by the operator"
    SKIPPED = "skipped", "Not run"


class StepPhase(models.TextChoices):
    PRECHECK = "precheck", "Precheck"
    STEP = "step", "Step"
    POSTCHECK = "postcheck", "Postcheck"
