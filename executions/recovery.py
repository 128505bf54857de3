"""Finding executions whose worker died (kill -9, host loss) and handing them to a live one.

The runner that takes one up decides, step by step, whether it may continue (see runner.py);
this module only notices and re-queues. It is run on a schedule and when a worker starts.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from executions import services
from executions.choices import ExecutionState
from executions.models import Execution
from executions.runner import ORPHAN_AFTER


def orphans() -> list[int]:
    stale = timezone.now() - ORPHAN_AFTER
    return list(
        Execution.objects.filter(state__in=[ExecutionState.QUEUED, ExecutionState.RUNNING])
        .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at=None, created_at__lt=stale))
        .values_list("pk", flat=True)
    )


def requeue_orphans() -> int:
    found = orphans()
    for execution_id in found:
        services.enqueue(execution_id)
    return len(found)


def ensure_schedule(**kwargs: object) -> None:
    """The recovery sweep runs every minute (django-q2's finest schedule)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="executions.recover_orphans",
        defaults={
            "func": "executions.tasks.recover_orphans",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
