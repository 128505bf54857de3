"""The append-only, hash-chained audit log.

Rows are written only by ``audit.services.record`` inside the caller's transaction. The database
refuses UPDATE and DELETE on the table (triggers installed by migration 0002), and each row's hash
covers its content and the previous row's hash, so any change shows up in ``audit_verify``.
The actor is kept as a plain id and name (no foreign key) so that removing a user never has to
touch, and could never cascade into, the log.
"""

from django.db import models


class AuditEvent(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_name = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    context = models.CharField(max_length=16)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_name}"
