"""/metrics exposes state read from the database and request latency."""

from __future__ import annotations

import pytest
from django.utils import timezone

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
