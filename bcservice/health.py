"""Liveness (/healthz: the process answers) and readiness (/readyz: database and broker up)."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means not ready
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def _check_broker() -> str:
    if "redis" not in settings.Q_CLUSTER:
        return "ok (orm broker uses the database)"
    try:
        from django_q.brokers import get_broker

        return "ok" if get_broker().ping() else "unreachable"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker()}
    ready = all(value.startswith("ok") for value in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)
