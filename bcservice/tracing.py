"""Optional OpenTelemetry tracing: off by default, one setting turns it on.

``BC_OTEL_ENABLED=1`` traces every HTTP request (opentelemetry-instrumentation-django) and every
SQL statement on the service's PostgreSQL store (opentelemetry-instrumentation-psycopg), in the web
processes and the ``qcluster`` workers. Spans go to the OTLP/HTTP exporter, configured by the
standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_SERVICE_NAME``, ...); ``BC_OTEL_EXPORTER=console`` prints them instead (debugging).

The packages are the optional extra ``bcservice[otel]``. Off, nothing of OpenTelemetry is
imported; on but not installed, the process refuses to start with a message that says so, rather
than run silently untraced.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_configured = False


def enabled() -> bool:
    return bool(getattr(settings, "BC_OTEL_ENABLED", False))


def configure(exporter: Any = None) -> bool:
    """Install tracing once per process when enabled; True when it is on.

    Called from ``BcserviceConfig.ready()``, i.e. before Django builds its middleware chain,
    which the Django instrumentation extends. ``exporter``: a SpanExporter to use instead of the
    configured one (tests pass an in-memory exporter).
    """
    global _configured
    if not enabled() or _configured:
        return _configured
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise ImproperlyConfigured(
            "BC_OTEL_ENABLED is set but OpenTelemetry is not installed: "
            "pip install 'bcservice[otel]'"
        ) from exc
    kind = getattr(settings, "BC_OTEL_EXPORTER", "otlp")
    if exporter is not None:
        processor: Any = SimpleSpanProcessor(exporter)
    elif kind == "console":
        processor = SimpleSpanProcessor(ConsoleSpanExporter())
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
    name = os.environ.get("OTEL_SERVICE_NAME", "bcservice")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        # No sqlcommenter: statements stay as written (pg_stat_statements groups them).
        PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    _configured = True
    return True
