"""django-q2 entry points: thin wrappers that bind the worker context and call the runner."""

from __future__ import annotations

from bcservice import request_context
from executions import recovery, runner


def run_execution(execution_id: int) -> str:
    with request_context.bind("worker"):
        return runner.run_execution(execution_id)


def recover_orphans() -> int:
    """Scheduled: re-queue executions whose worker stopped heart-beating."""
    with request_context.bind("worker"):
        return recovery.requeue_orphans()
