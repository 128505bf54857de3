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
from audit.chain import GENESIS_HASH, event_hash, format_time
from audit.models import AuditEvent
from audit.snapshot import clean_text, json_safe
from bcservice import request_context

# An arbitrary but fixed key for pg_advisory_xact_lock; only audit appends take it.
_AUDIT_LOCK_KEY = 0x6263_6175_6469_74  # "bcaudit"


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, str(actor) if isinstance(actor, str) else ""
    return actor.pk, actor.get_username()


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
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
        head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
        seq = head["seq"] + 1 if head else 1
        prev_hash = head["hash"] if head else GENESIS_HASH
        # Microsecond precision is what every supported database keeps.
        at = timezone.now()
        fields = {
            "seq": seq,
            "at": format_time(at),
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
            "prev_hash": prev_hash,
        }
        digest = event_hash(fields)
        fields["at"] = at
        event = AuditEvent.objects.create(**fields, hash=digest)
    every = conf.checkpoint_every()
    if every and seq % every == 0:
        from audit.tasks import enqueue_checkpoint

        # After commit: a rolled-back append must not be checkpointed (and is not in the chain).
        transaction.on_commit(enqueue_checkpoint)
    return event
