"""Writing the audit log: ``record`` is the only way an AuditEvent is created.

Call it inside the transaction of the change it describes. Appends are serialised so the chain
never forks: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the database's single
writer (the settings open every transaction with BEGIN IMMEDIATE). Every
``BC_AUDIT_CHECKPOINT_EVERY`` events the checkpoint job is queued once the transaction commits:
signing happens in the worker, which holds the key; the web process never does.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit import conf
from audit.chain import GENESIS_HASH, ROW_FIELDS, event_hash, format_time
from audit.models import AuditEvent
from audit.snapshot import clean_text, json_safe
from bcservice import request_context

# An arbitrary but fixed key for pg_advisory_xact_lock; only audit appends take it.
_AUDIT_LOCK_KEY = 0x6263_6175_6469_74  # "bcaudit"
_PG_HEAD = "SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1"
_PG_LOCK_AND_HEAD = f"SELECT pg_advisory_xact_lock(%s); {_PG_HEAD}"


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, str(actor) if isinstance(actor, str) else ""
    return actor.pk, actor.get_username()


def _lock_and_read_head() -> tuple[int, str]:
    """Take the append lock, then read the head: the next sequence number and previous hash.

    On PostgreSQL both go in one round trip (two statements in one query string; each statement
    takes its own snapshot, so the head is read after the lock is granted). The lock is held
    until the caller's transaction ends, so keep appends at the end of a transaction.
    """
    if connection.vendor == "postgresql":
        from psycopg import ClientCursor

        with connection.cursor() as cursor:
            if isinstance(cursor.cursor, ClientCursor):
                cursor.execute(_PG_LOCK_AND_HEAD, [_AUDIT_LOCK_KEY])
                cursor.nextset()
            else:  # server-side binding refuses two statements in one query
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
                cursor.execute(_PG_HEAD)
            row = cursor.fetchone()
    else:
        row = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)


_COLUMNS = ROW_FIELDS
# Built from the chain's constant field names, never from input.
_INSERT = (
    f"INSERT INTO audit_auditevent ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
)


def _insert(fields: dict[str, Any], digest: str) -> None:
    """One plain INSERT: the ORM's per-save work would all happen while holding the lock."""
    ops = connection.ops
    values = {**fields, "hash": digest, "at": ops.adapt_datetimefield_value(fields["at"])}
    for name in ("before", "after"):
        # SQL NULL for None, as the model's JSONField stores it.
        values[name] = None if fields[name] is None else ops.adapt_json_value(fields[name], None)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [values[name] for name in _COLUMNS])


def record(
    *,
    action: str,
    actor: Any = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    object_name: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    context: str | None = None,
) -> AuditEvent:
    """Append one event to the chain in the current transaction and return it.

    ``actor`` is a user, a plain string for non-user actors (e.g. "worker"), or None.
    ``obj`` fills object type, id and name from a model instance when given.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_name = object_name or str(obj)
    ctx = request_context.current()
    actor_id, actor_name = _actor_fields(actor)
    # Everything that does not depend on the chain head is prepared before taking the lock,
    # which every writer waits for.
    fields = {
        "seq": 0,
        "at": "",
        "actor_id": actor_id,
        "actor_name": clean_text(actor_name[:150]),
        "action": clean_text(action),
        "object_type": clean_text(object_type),
        "object_id": clean_text(str(object_id)[:64]),
        "object_name": clean_text(str(object_name)[:255]),
        "before": json_safe(before),
        "after": json_safe(after),
        "request_id": clean_text(ctx.request_id),
        "context": clean_text(context or ctx.source),
        "prev_hash": "",
    }
    # No savepoint: if the append fails, the change it describes must not commit either
    # (and a savepoint would cost two more round trips while holding the lock).
    with transaction.atomic(savepoint=False):
        seq, prev_hash = _lock_and_read_head()
        # Microsecond precision is what every supported database keeps.
        at = timezone.now()
        fields.update(seq=seq, at=format_time(at), prev_hash=prev_hash)
        digest = event_hash(fields)
        fields["at"] = at
        _insert(fields, digest)
    event = AuditEvent(**fields, hash=digest)
    event._state.adding, event._state.db = False, connection.alias
    every = conf.checkpoint_every()
    if every and seq % every == 0:
        from audit.tasks import enqueue_checkpoint

        # After commit: a rolled-back append must not be checkpointed (and is not in the chain).
        transaction.on_commit(enqueue_checkpoint)
    return event
