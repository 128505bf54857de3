"""Races on PostgreSQL: concurrent reports of one condition open one alert, and a delivery
claimed by several workers at once is sent once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from notifications import delivery
from notifications.models import Alert, Delivery, Event, Route
from notifications.services import notify
from tests.notifications.conftest import status_payload

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

THREADS = 8


def _race(fn: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_reports_open_one_alert():
    Route.objects.create(name="pager", kinds="status.*", channel="log")
    Alert.objects.create(resource_id=77)  # known resource, nothing open: the row lock decides

    def report(i: int) -> None:
        notify(
            "resource.status_changed",
            subject="x",
            tier=1,
            environment="production",
            payload=status_payload("orders-db", "red", "ok", "lag_red"),
            resource_id=77,
        )

    _race(report)
    assert list(Event.objects.values_list("kind", flat=True)) == ["status.red"]
    assert Delivery.objects.count() == 1


def test_a_delivery_is_sent_once_however_many_workers_try(caplog):
    Route.objects.create(name="demo", kinds="*", channel="log")
    notify("request.created", subject="r", tier=1, environment="test", payload={})
    pk = Delivery.objects.get().pk
    outcomes = _race(lambda i: delivery.attempt(pk))
    assert sorted(outcomes, key=str) == ["delivered"] + ["not due"] * (THREADS - 1)
    sent = [r for r in caplog.records if r.name == "notifications.delivery"]
    assert len(sent) == 1
    assert Delivery.objects.get().attempts == 1
