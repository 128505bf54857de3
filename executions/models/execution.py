"""An Execution runs one approved request; its ExecutionSteps are the plan and the record.

``ActiveExecutionLock`` is how invariant 3 is kept by the database: a row per resource in scope,
unique on the resource, created in the transaction that starts the execution and deleted in the
one that ends it. A second start on any resource of the scope fails on the unique constraint.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from approvals.models import ExecutionRequest
from executions.choices import ExecutionState, StepPhase, StepState
from inventory.models import Resource


class Execution(models.Model):
    request = models.OneToOneField(
        ExecutionRequest, on_delete=models.PROTECT, related_name="execution"
    )
    kind = models.CharField(max_length=16)
    state = models.CharField(
        max_length=16, choices=ExecutionState.choices, default=ExecutionState.QUEUED
    )
    state_reason = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Operator choices made at start: precheck overrides and guards (e.g. invariant 10).
    overrides = models.JSONField(default=list, blank=True)
    override_reason = models.TextField(blank=True)
    # Shared step state persisted between steps so that a resumed run sees what was learned.
    context = models.JSONField(default=dict, blank=True)
    # Evidence gathered as it runs: markers before/after, the data-loss conclusion, timings.
    evidence = models.JSONField(default=dict, blank=True)
    # The worker that owns the run and its heartbeat; a stale heartbeat means the worker died.
    owner = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    runs = models.PositiveIntegerField(default=0, help_text="How many times a worker took it up.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"execution {self.pk} ({self.kind}, {self.state})"


class ExecutionStep(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    phase = models.CharField(max_length=16, choices=StepPhase.choices)
    changes_state = models.BooleanField(default=False)
    idempotent = models.BooleanField(default=True)
    timeout_seconds = models.FloatField(default=60.0)
    pause_before = models.BooleanField(
        default=False, help_text="Wait for an operator to continue before this step."
    )
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["execution", "position"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "position"], name="uniq_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.position} {self.name} ({self.state})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ActiveExecutionLock(models.Model):
    resource = models.OneToOneField(
        Resource, on_delete=models.PROTECT, primary_key=True, related_name="active_execution"
    )
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="locks")
    taken_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.resource_id} locked by execution {self.execution_id}"
