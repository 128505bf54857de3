"""Executions: one per started request, its steps, and the per-resource locks."""

from executions.models.execution import ActiveExecutionLock, Execution, ExecutionStep

__all__ = ["ActiveExecutionLock", "Execution", "ExecutionStep"]
