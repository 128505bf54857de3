"""/metrics exposes state read from the database and request latency."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from bcservice import job_runtimes
from inventory.models import ResourceStatus


@pytest.mark.django_db
def test_metrics_report_resource_state_and_latency(client, make_resource):
    resource = make_resource("orders-db")
    ResourceStatus.objects.create(
        resource=resource,
        state="yellow",
        visibility="ok",
        lag_seconds=42.5,
        observed_at=timezone.now(),
    )
    lost = make_resource("lost-db", platform="postgres")
    ResourceStatus.objects.create(
        resource=lost,
        state="red",
        visibility="lost",
        reasons=[{"code": "dr_unreachable", "message": "x"}],
    )
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert (
        'bc_resource_lag_seconds{environment="production",platform="postgres",resource="orders-db",tier="1"} 42.5'
        in body
    )
    assert (
        'bc_resource_state{environment="production",platform="postgres",resource="orders-db",tier="1"} 1.0'
        in body
    )
    assert (
        'bc_resource_visible{environment="production",platform="postgres",resource="lost-db",tier="1"} 0.0'
        in body
    )
    assert 'bc_connector_problems{code="dr_unreachable",platform="postgres"} 1.0' in body
    assert (
        'bc_http_request_duration_seconds_count{method="GET",route="healthz",status="2xx"}' in body
    )
    assert "bc_worker_queue_depth" in body


@pytest.mark.django_db
def test_metrics_token_when_configured(client, settings):
    settings.BC_METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def pause(seconds: float) -> float:
    """A task for django-q2 to run."""
    time.sleep(seconds)
    return seconds


def broken() -> None:
    raise ValueError("this task fails")


FUNC = "tests.bcservice.test_metrics"


def _runtimes(client) -> dict[tuple[str, str, str, str], float]:
    """(sample name, func, outcome, le) -> value of bc_job_runtime_seconds in a real scrape."""
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        if family.name == "bc_job_runtime_seconds":
            assert family.type == "histogram"
            for s in family.samples:
                key = (s.name, s.labels["func"], s.labels["outcome"], s.labels.get("le", ""))
                found[key] = s.value
    return found


@pytest.mark.django_db
def test_job_runtimes_histogram_counts_tasks_run_through_django_q(client, monkeypatch):
    # Sync mode: django-q2 runs its own worker and monitor functions in this process, signals
    # included, inside the test's transaction.
    monkeypatch.setattr(Conf, "SYNC", True)
    assert not [k for k in _runtimes(client) if k[1].startswith(FUNC)]

    for seconds in (0, 0, 0.3):
        async_task(f"{FUNC}.pause", seconds)
    with pytest.raises(ValueError):
        async_task(f"{FUNC}.broken")

    after = _runtimes(client)
    ok = {
        k[3]: v
        for k, v in after.items()
        if k[:3] == ("bc_job_runtime_seconds_bucket", f"{FUNC}.pause", "success")
    }
    assert after[("bc_job_runtime_seconds_count", f"{FUNC}.pause", "success", "")] == 3
    assert ok["+Inf"] == 3
    assert list(ok) == [*(floatToGoString(b) for b in job_runtimes.BUCKETS), "+Inf"]
    counts = list(ok.values())
    assert counts == sorted(counts), "buckets are cumulative"
    # The 0.3 s run slept at least 0.3 s: it is above the 0.25 bucket, whatever else ran.
    assert ok["0.25"] <= 2
    assert after[("bc_job_runtime_seconds_sum", f"{FUNC}.pause", "success", "")] >= 0.3
    assert after[("bc_job_runtime_seconds_count", f"{FUNC}.broken", "failure", "")] == 1
    assert ("bc_job_runtime_seconds_count", f"{FUNC}.broken", "success", "") not in after

    async_task(f"{FUNC}.pause", 0)
    again = _runtimes(client)
    assert again[("bc_job_runtime_seconds_count", f"{FUNC}.pause", "success", "")] == 4
    assert again[("bc_job_runtime_seconds_bucket", f"{FUNC}.pause", "success", "+Inf")] == 4


def test_job_runtime_labels_stay_bounded():
    assert job_runtimes.func_label("executions.tasks.run_execution") == (
        "executions.tasks.run_execution"
    )
    assert job_runtimes.func_label(pause) == f"{FUNC}.pause"
    assert job_runtimes.func_label(lambda: None) == "other"
    assert job_runtimes.func_label('x"} 1\nbc_fake 1') == "other"
    assert job_runtimes.func_label("a" * 200) == "other"
    assert job_runtimes.bucket_for(0) == "0.01"
    assert job_runtimes.bucket_for(0.25) == "0.25"
    assert job_runtimes.bucket_for(0.2500001) == "0.5"
    assert job_runtimes.bucket_for(10_000) == "+Inf"


@pytest.mark.django_db
def test_a_job_runtime_that_cannot_be_counted_never_breaks_the_monitor(monkeypatch, caplog):
    def store_down(*args, **kwargs):
        raise DatabaseError("the store is down")

    monkeypatch.setattr(job_runtimes, "record", store_down)
    task = {"func": f"{FUNC}.pause", "success": True, job_runtimes._RUNTIME: 0.1}
    job_runtimes._on_post_execute("django_q", task=task)  # a raise would stop django-q2's loop
    assert f"job runtime of {FUNC}.pause not counted" in caplog.text
