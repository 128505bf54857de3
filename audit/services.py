"""Writing the audit log: ``record`` is the only way an AuditEvent is created.

Call it inside the transaction of the change it describes. Appends are serialised so the chain
never forks: on PostgreSQL by a transaction-scoped advisory lock that ``audit_append()`` (migration
0005) takes before it reads the head, hashes and inserts, all in one statement, so the lock is
held for that statement and the caller's COMMIT and no longer; on SQLite by the database's single
writer (the settings open every transaction with BEGIN IMMEDIATE), with the linking done here.
The event's time is the database's clock on PostgreSQL (read under the lock, so times never run
backwards along the chain while the clock does not) and the web process's on SQLite. Every
``BC_AUDIT_CHECKPOINT_EVERY`` events the checkpoint job is queued once the transaction commits:
signing happens in the worker, which holds the key; the web process never does.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit import conf
from audit.chain import GENESIS_HASH, ROW_FIELDS, event_hash, format_time, hash_template
from audit.models import AuditEvent
from audit.snapshot import clean_text, json_safe
from audit.tasks import enqueue_checkpoint  # light: the signing code loads inside the job
from bcservice import request_context

# An arbitrary but fixed key for pg_advisory_xact_lock; only audit appends take it.
_AUDIT_LOCK_KEY = 0x6263_6175_6469_74  # "bcaudit"


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, str(actor) if isinstance(actor, str) else ""
    return actor.pk, actor.get_username()


_COLUMNS = ROW_FIELDS
# Built from the chain's constant field names, never from input.
_INSERT = (
    f"INSERT INTO audit_auditevent ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
)
# audit_append() (migration 0005): takes the lock, reads the head, hashes and inserts in one
# statement, so the lock is held for that statement and the caller's COMMIT only.
_PG_APPEND = (
    "SELECT r_seq, r_at, r_prev_hash, r_hash FROM audit_append("
    "%s::bigint, %s::bigint, %s::text, %s::text, %s::text, %s::text, %s::text, %s::jsonb, "
    "%s::jsonb, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text)"
)
_PG_ARGS = ("actor_id", "actor_name", "action", "object_type", "object_id", "object_name")


def _json(value: Any) -> Any:
    # SQL NULL for None, as the model's JSONField stores it.
    return None if value is None else connection.ops.adapt_json_value(value, None)


def _append_postgresql(fields: dict[str, Any]) -> tuple[int, Any, str, str]:
    """Link and insert in the server: (seq, at, prev_hash, hash) of the new event."""
    template = hash_template(fields)
    args = [
        _AUDIT_LOCK_KEY,
        *(fields[name] for name in _PG_ARGS),
        _json(fields["before"]),
        _json(fields["after"]),
        fields["request_id"],
        fields["context"],
        *template,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_PG_APPEND, args)
        return cursor.fetchone()


def _append_sqlite(fields: dict[str, Any]) -> tuple[int, Any, str, str]:
    """Link in Python and INSERT; the transaction already holds SQLite's write lock."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    # Microsecond precision is what every supported database keeps.
    at = timezone.now()
    digest = event_hash({**fields, "seq": seq, "at": format_time(at), "prev_hash": prev_hash})
    values = {
        **fields,
        "seq": seq,
        "at": connection.ops.adapt_datetimefield_value(at),
        "prev_hash": prev_hash,
        "hash": digest,
        "before": _json(fields["before"]),
        "after": _json(fields["after"]),
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [values[name] for name in _COLUMNS])
    return seq, at, prev_hash, digest


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
        if connection.vendor == "postgresql":
            seq, at, prev_hash, digest = _append_postgresql(fields)
        else:
            seq, at, prev_hash, digest = _append_sqlite(fields)
    fields.update(seq=seq, at=at, prev_hash=prev_hash)
    event = AuditEvent(**fields, hash=digest)
    event._state.adding, event._state.db = False, connection.alias
    every = conf.checkpoint_every()
    if every and seq % every == 0:
        # After commit: a rolled-back append must not be checkpointed (and is not in the chain).
        transaction.on_commit(enqueue_checkpoint)
    return event
