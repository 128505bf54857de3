"""Job runtimes: a Prometheus histogram of django-q2 task runtimes by task function and outcome.

Measured where the task runs: django-q2's ``pre_execute`` and ``post_execute_in_worker`` signals
bracket the call in the worker process (django-q2's own Task.started is the *enqueue* time, so
stopped - started would count the wait in the queue). The runtime travels with the result to
the cluster's monitor process, whose ``post_execute`` adds it to a counter row in the database
(``TaskRuntimeBucket``), off the worker's path. /metrics reads the rows at scrape time, so the
histogram is cumulative and the same on every web replica whichever host ran the task.

Labels stay bounded: ``func`` is the task's dotted function path (the code's own set of tasks,
never the per-run task name such as ``execution-42``); anything else is reported as ``other``.
Not counted: a task the cluster's guard kills outright (a hard timeout or a crashed worker
process) sends no result; its failure shows in django-q2's records and the worker logs.
"""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections import defaultdict
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

logger = logging.getLogger(__name__)

METRIC = "bc_job_runtime_seconds"
# From a notification delivery (milliseconds) to a sweep loop (~50 s) and a long execution.
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)
_BOUNDS = tuple(floatToGoString(b) for b in BUCKETS)
_INF = "+Inf"
_FUNC = re.compile(r"[A-Za-z_][\w.]{0,119}")
_STARTED, _RUNTIME = "bc_runtime_started", "bc_runtime_seconds"


def func_label(func: Any) -> str:
    from django_q.utils import get_func_repr

    name = get_func_repr(func) or ""
    return name if _FUNC.fullmatch(name) else "other"


def bucket_for(seconds: float) -> str:
    """The upper bound (as exposed) of the bucket a runtime of ``seconds`` falls in."""
    index = bisect.bisect_left(BUCKETS, seconds)
    return _BOUNDS[index] if index < len(BUCKETS) else _INF


def record(func: Any, seconds: float, *, success: bool) -> None:
    """Count one finished run: one conditional increment (a row is created on first use)."""
    from bcservice.models import TaskRuntimeBucket

    seconds = max(0.0, float(seconds))
    key = {
        "func": func_label(func),
        "outcome": "success" if success else "failure",
        "le": bucket_for(seconds),
    }
    bump = {"count": F("count") + 1, "seconds": F("seconds") + seconds}
    if TaskRuntimeBucket.objects.filter(**key).update(**bump):
        return
    try:
        with transaction.atomic():
            TaskRuntimeBucket.objects.create(**key, count=1, seconds=seconds)
    except IntegrityError:  # another monitor created it first
        TaskRuntimeBucket.objects.filter(**key).update(**bump)


def _record_safely(task: dict[str, Any]) -> None:
    seconds = task.get(_RUNTIME)
    if seconds is None:
        return
    try:
        record(task.get("func"), seconds, success=bool(task.get("success")))
    except Exception:
        # A receiver that raises would stop django-q2's monitor loop: a lost count is better.
        logger.warning("job runtime of %s not counted", task.get("func"), exc_info=True)


def _on_pre_execute(sender: Any, func: Any = None, task: Any = None, **kwargs: Any) -> None:
    if isinstance(task, dict):
        task[_STARTED] = time.perf_counter()


def _on_post_execute_in_worker(
    sender: Any, func: Any = None, task: Any = None, **kwargs: Any
) -> None:
    if not isinstance(task, dict) or _STARTED not in task:
        return
    task[_RUNTIME] = time.perf_counter() - task.pop(_STARTED)
    if task.get("sync") and "success" not in task:
        # Sync mode (tests, development) re-raises a failure straight from the worker: no
        # monitor will see this task, so it is counted here.
        _record_safely(task)


def _on_post_execute(sender: Any, task: Any = None, **kwargs: Any) -> None:
    if isinstance(task, dict):
        _record_safely(task)


def connect() -> None:
    """Hook the receivers to django-q2's signals (called once from BcserviceConfig.ready)."""
    from django_q.signals import post_execute, post_execute_in_worker, pre_execute

    pre_execute.connect(_on_pre_execute, dispatch_uid="bc-job-runtime-pre")
    post_execute_in_worker.connect(_on_post_execute_in_worker, dispatch_uid="bc-job-runtime-run")
    post_execute.connect(_on_post_execute, dispatch_uid="bc-job-runtime-post")


def histogram() -> HistogramMetricFamily:
    """The counters as a cumulative Prometheus histogram (read from the database)."""
    from bcservice.models import TaskRuntimeBucket

    family = HistogramMetricFamily(
        METRIC,
        "Runtime of django-q2 tasks in the worker, by task function and outcome.",
        labels=["func", "outcome"],
    )
    series: dict[tuple[str, str], dict[str, tuple[int, float]]] = defaultdict(dict)
    rows = TaskRuntimeBucket.objects.values_list("func", "outcome", "le", "count", "seconds")
    for func, outcome, le, count, seconds in rows:
        series[(func, outcome)][le] = (count, seconds)
    for (func, outcome), by_le in sorted(series.items()):
        # Every series gets every bound (histogram_quantile needs them); bounds of rows written
        # with an older bucket list stay where they were.
        bounds = sorted((set(_BOUNDS) | set(by_le)) - {_INF}, key=float)
        total, buckets = 0, []
        for le in [*bounds, _INF]:
            total += by_le.get(le, (0, 0.0))[0]
            buckets.append((le, total))
        family.add_metric([func, outcome], buckets, sum_value=sum(s for _, s in by_le.values()))
    return family
