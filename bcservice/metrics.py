"""Prometheus metrics at /metrics.

Gauges that describe state (per-resource lag, freshness and status, queue depth, executions by
outcome, connector errors by platform and kind) are read from the database at scrape time by a
custom collector, so every web replica reports the same truth and nothing is lost when a worker
restarts. API latency is a per-process histogram (run gunicorn with PROMETHEUS_MULTIPROC_DIR set
to aggregate across its workers; see docs/operations.md). Job runtimes are a histogram whose
counters the workers keep in the database (bcservice/job_runtimes.py).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bcservice import job_runtimes

API_LATENCY = Histogram(
    "bc_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_STATE_VALUE = {"green": 0, "yellow": 1, "red": 2}


class StateCollector(Collector):
    """Reads the current state from the database on every scrape."""

    def collect(self) -> Iterator[Any]:
        # Materialised first, so an unreachable store yields bc_store_up 0 and the process's own
        # metrics instead of a failed scrape (degraded mode, bcservice/degraded.py).
        up = GaugeMetricFamily("bc_store_up", "1 when the service's own database answered.")
        try:
            families = list(self._from_database())
        except DatabaseError:
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _from_database(self) -> Iterator[Any]:
        from django_q.models import OrmQ, Task

        from executions.models import Execution
        from inventory.models import ResourceStatus

        lag = GaugeMetricFamily(
            "bc_resource_lag_seconds", "Replication lag (last known).", labels=_LABELS
        )
        age = GaugeMetricFamily(
            "bc_resource_observation_age_seconds",
            "Age of the last successful observation.",
            labels=_LABELS,
        )
        state = GaugeMetricFamily("bc_resource_state", "0 green, 1 yellow, 2 red.", labels=_LABELS)
        visible = GaugeMetricFamily(
            "bc_resource_visible", "1 when the service can see the target.", labels=_LABELS
        )
        errors = GaugeMetricFamily(
            "bc_connector_problems",
            "Resources whose last collection failed, by platform and reason code.",
            labels=["platform", "code"],
        )
        now = timezone.now()
        problems: dict[tuple[str, str], int] = {}
        rows = ResourceStatus.objects.select_related("resource").only(
            "state",
            "visibility",
            "lag_seconds",
            "observed_at",
            "reasons",
            "resource__name",
            "resource__platform",
            "resource__tier",
            "resource__environment",
        )
        for status in rows.iterator(chunk_size=2000):
            r = status.resource
            labels = [r.name, r.platform, str(r.tier), r.environment]
            if status.lag_seconds is not None:
                lag.add_metric(labels, status.lag_seconds)
            if status.observed_at is not None:
                age.add_metric(labels, (now - status.observed_at).total_seconds())
            state.add_metric(labels, _STATE_VALUE.get(status.state, 2))
            visible.add_metric(labels, 1 if status.visibility == "ok" else 0)
            if status.visibility != "ok":
                for reason in status.reasons or []:
                    key = (r.platform, str(reason.get("code", "unknown")))
                    problems[key] = problems.get(key, 0) + 1
        for (platform, code), count in sorted(problems.items()):
            errors.add_metric([platform, code], count)
        yield from (lag, age, state, visible, errors)

        queue = GaugeMetricFamily("bc_worker_queue_depth", "Tasks waiting in the broker.")
        queue.add_metric([], _queue_depth(OrmQ))
        yield queue

        outcomes = CounterMetricFamily(
            "bc_executions", "Executions by kind and state.", labels=["kind", "state"]
        )
        for row in Execution.objects.values("kind", "state").annotate(n=Count("id")):
            outcomes.add_metric([row["kind"], row["state"]], row["n"])
        yield outcomes

        yield from _alert_metrics()

        yield job_runtimes.histogram()
        # Kept for existing alerts and dashboards: django-q2's Task.started is the enqueue time,
        # so this is the latest run's time from enqueue to end (queue wait included).
        runtimes = GaugeMetricFamily(
            "bc_job_last_runtime_seconds",
            "Time from enqueue to end of the latest run of each task.",
            labels=["func"],
        )
        seen: set[str] = set()
        for task in Task.objects.order_by("-stopped").only("func", "started", "stopped")[:200]:
            if task.func not in seen and task.started and task.stopped:
                seen.add(task.func)
                runtimes.add_metric([task.func], (task.stopped - task.started).total_seconds())
        yield runtimes


_LABELS = ["resource", "platform", "tier", "environment"]


def _alert_metrics() -> Iterator[Any]:
    """Alerts sent (deliveries by channel, action and status) and alerts open now."""
    from notifications.models import Alert, Delivery

    sent = CounterMetricFamily(
        "bc_alert_deliveries",
        "Alert and notification deliveries by channel, action and delivery status.",
        labels=["channel", "action", "status"],
    )
    rows = Delivery.objects.values("channel", "action", "status").annotate(n=Count("id"))
    for row in rows.order_by("channel", "action", "status"):
        sent.add_metric([row["channel"], row["action"], row["status"]], row["n"])
    yield sent
    open_alerts = GaugeMetricFamily(
        "bc_alerts_open", "Resources with an open alert, by condition.", labels=["condition"]
    )
    for row in Alert.objects.exclude(condition="").values("condition").annotate(n=Count("pk")):
        open_alerts.add_metric([row["condition"]], row["n"])
    yield open_alerts


def _queue_depth(orm_queue: Any) -> int:
    if "redis" in settings.Q_CLUSTER:
        try:
            from django_q.brokers import get_broker

            return int(get_broker().queue_size() or 0)
        except Exception:
            return -1
    return orm_queue.objects.count()


_collector_registered = False


def register() -> None:
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(StateCollector())
        _collector_registered = True


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "BC_METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    register()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Times every request; the route label is the URL pattern, never the raw path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        API_LATENCY.labels(request.method, route, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response
