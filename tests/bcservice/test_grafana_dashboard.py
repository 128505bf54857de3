"""The sample Grafana dashboard cannot rot: every metric and label it queries is in a real
/metrics scrape of this code, and every item of the issue's metric list has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ExecutionRequest
from executions.models import Execution
from inventory.models import ResourceStatus
from notifications.models import Alert, Delivery, Event

DASHBOARD = Path(settings.BASE_DIR) / "docs" / "grafana" / "bcservice-dashboard.json"
_METRIC = re.compile(r"\b(bc_[a-z0-9_]+)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"(bc_[a-z0-9_]+)\{([^}]*)\}")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    return exprs


def _scrape(client) -> dict[str, set[str]]:
    """Sample name -> its label names, from a real scrape (families without samples too)."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


@pytest.fixture
def populated(make_resource, make_user, monkeypatch):
    """One row of everything the collector reads, so the label sets are the real ones."""
    resource = make_resource("orders-db")
    ResourceStatus.objects.create(
        resource=resource,
        state="red",
        visibility="lost",
        lag_seconds=3.0,
        observed_at=timezone.now(),
        reasons=[{"code": "dr_unreachable", "message": "x"}],
    )
    event = Event.objects.create(kind="status.red", subject="orders-db is RED")
    Delivery.objects.create(event=event, route_name="db", channel="slack", action="trigger")
    Alert.objects.create(resource_id=resource.pk, condition="red")
    request = ExecutionRequest.objects.create(
        kind="drill",
        resource=resource,
        target_site=resource.dr_site,
        reason="metrics",
        requested_by=(operator := make_user("operator")),
    )
    Execution.objects.create(request=request, kind="drill", state="succeeded", started_by=operator)
    # A real task through django-q2 (sync mode): its Task row and its job-runtime histogram count.
    monkeypatch.setattr(Conf, "SYNC", True)
    async_task("math.floor", 1.5)
    assert Task.objects.filter(func="math.floor", success=True).exists()


@pytest.mark.django_db
def test_every_metric_and_label_the_dashboard_queries_is_exported(client, populated):
    client.get("/healthz")  # a latency sample
    scraped = _scrape(client)
    exprs = _expressions()
    assert exprs, "the dashboard has no queries"
    for expr in exprs:
        used = set(_METRIC.findall(expr))
        assert used, f"no bcservice metric in {expr!r}"
        missing = used - scraped.keys()
        assert not missing, f"{expr!r} queries {missing}, not in /metrics"
        labels = set().union(*(scraped[m] for m in used)) | {"le"}
        for group in _BY.findall(expr):
            wanted = {name.strip() for name in group.split(",") if name.strip()}
            assert wanted <= labels, f"{expr!r} groups by {wanted - labels}"
        for metric, matchers in _SELECTOR.findall(expr):
            wanted = {m.split("=")[0].strip(" !~") for m in matchers.split(",") if m.strip()}
            assert wanted <= scraped[metric], (
                f"{expr!r}: {metric} has no {wanted - scraped[metric]}"
            )


def test_the_dashboard_covers_every_metric_the_issue_lists():
    text = " ".join(_expressions())
    for metric in (
        "bc_http_request_duration_seconds_bucket",  # API latency
        "bc_worker_queue_depth",  # worker queue depth
        "bc_job_runtime_seconds_bucket",  # job runtimes
        "bc_connector_problems",  # connector errors by platform and kind
        "bc_resource_lag_seconds",  # per-resource lag
        "bc_resource_observation_age_seconds",  # freshness
        "bc_resource_state",  # status
        "bc_alert_deliveries_total",  # alerts sent
        "bc_executions_total",  # executions by outcome
    ):
        assert metric in text, metric
