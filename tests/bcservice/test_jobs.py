"""bcservice.jobs.enqueue: queued for the worker without closing the caller's connection."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_q.models import OrmQ

from bcservice import jobs


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("redis" in settings.Q_CLUSTER, reason="the ORM broker's behaviour")
def test_enqueue_after_commit_keeps_the_callers_connection():
    # The ORM broker closes a connection past CONN_MAX_AGE before its queries when the caller is
    # not in a transaction (as in an on_commit callback): two reconnects per enqueue.
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    connection.ensure_connection()
    before = connection.connection

    with transaction.atomic():
        transaction.on_commit(lambda: jobs.enqueue("math.floor", 1.5, task_name="floor"))

    assert connection.connection is before
    task = OrmQ.objects.get().task
    assert (task["func"], task["args"]) == ("math.floor", (1.5,))


@pytest.mark.django_db(transaction=True)
def test_enqueue_in_a_rolled_back_transaction_queues_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        jobs.enqueue("math.floor", 2.5)
        raise RuntimeError("the change that wanted the job failed")
    assert not OrmQ.objects.exists()
