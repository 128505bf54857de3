"""Handing work to the django-q2 worker from application code: ``enqueue`` and nothing else.

django-q2's ORM broker (the default) calls ``close_old_connections()`` before each of its queries
whenever the caller is not inside a transaction. With ``CONN_MAX_AGE = 0`` (the default) that
closes the caller's database connection, and an enqueue then opens two new ones (two forks of
a PostgreSQL server process): measured at 6 to 7 ms per enqueue instead of 0.7 to 1.7 ms. Most
enqueues happen in ``transaction.on_commit`` callbacks, where autocommit is on again. Inside an
atomic block the broker leaves the connection alone; the queue row then commits in that block, or
with the caller's transaction when there is one. On the Redis broker the block holds no query and
costs nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue(func: str, *args: Any, **kwargs: Any) -> str:
    """``async_task`` without closing the caller's connection; returns the task id."""
    from django_q.tasks import async_task

    with transaction.atomic(savepoint=False):
        return async_task(func, *args, **kwargs)
