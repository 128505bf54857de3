"""OpenTelemetry tracing: one setting turns it on (a request then produces a server span with
its SQL as child spans); off, nothing of OpenTelemetry is imported or installed.

Each case runs in a fresh process: tracing is installed once per process, at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()  # "testserver" becomes an allowed host
from django.conf import settings
from django.test import Client
spans = []
if settings.BC_OTEL_ENABLED:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    memory = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(memory))
status = Client().get("/readyz").status_code
if settings.BC_OTEL_ENABLED:
    spans = [
        {"name": s.name, "kind": s.kind.name, "trace": s.context.trace_id,
         "parent": s.parent.span_id if s.parent else None, "id": s.context.span_id,
         "attributes": dict(s.attributes or {})}
        for s in memory.get_finished_spans()
    ]
print(json.dumps({
    "status": status,
    "spans": spans,
    "modules": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
    "middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
}))
"""


def _run(**env: str) -> dict:
    s = connection.settings_dict
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BC_OTEL", "OTEL_"))}
    if connection.vendor == "postgresql":
        environ["DATABASE_URL"] = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**environ, "DJANGO_SETTINGS_MODULE": "bcservice.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_off_by_default_nothing_is_imported_or_installed():
    result = _run()
    assert result["status"] == 200
    assert result["modules"] == [] and result["middleware"] == [] and result["spans"] == []


@pytest.mark.django_db
def test_on_a_request_produces_a_server_span_with_its_sql_inside():
    pytest.importorskip("opentelemetry.instrumentation.django")
    result = _run(BC_OTEL_ENABLED="1", BC_OTEL_EXPORTER="console")
    assert result["status"] == 200 and result["middleware"]
    servers = [s for s in result["spans"] if s["kind"] == "SERVER"]
    assert len(servers) == 1, result["spans"]
    server = servers[0]
    assert server["name"] == "GET readyz" and server["attributes"]["http.route"] == "readyz"
    if connection.vendor == "postgresql":
        sql = [s for s in result["spans"] if s["kind"] == "CLIENT"]
        assert sql, result["spans"]
        assert all(s["trace"] == server["trace"] for s in sql)
        assert any(s["parent"] == server["id"] for s in sql)
        assert any("SELECT" in s["attributes"].get("db.statement", "") for s in sql)


def test_on_without_the_packages_refuses_to_start():
    blocked = "import sys; sys.modules['opentelemetry'] = None\n" + PROBE
    done = subprocess.run(
        [sys.executable, "-c", blocked],
        env={**os.environ, "BC_OTEL_ENABLED": "1", "DJANGO_SETTINGS_MODULE": "bcservice.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "BC_OTEL_ENABLED is set but OpenTelemetry is not installed" in done.stderr
