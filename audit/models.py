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


class AuditCheckpoint(models.Model):
    """A signed statement "event ``seq`` had hash ``hash``", written by the checkpoint job.

    The copies that matter are the exported ones (the append-only directory, object storage with
    Object Lock): they live outside the database, so a rewrite of this database shows up against
    them. This table records what was exported, for status pages and export trailers. Like the
    events, its rows are never updated or deleted (triggers installed by migration 0004).
    """

    seq = models.BigIntegerField(primary_key=True)
    hash = models.CharField(max_length=64)
    at = models.DateTimeField()
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)
    exported_to = models.JSONField(default=list)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} {self.hash[:12]}"

    def document(self) -> dict:
        """The signed checkpoint document, exactly as exported."""
        from audit.chain import format_time
        from audit.signing import FORMAT, VERSION

        return {
            "format": FORMAT,
            "version": VERSION,
            "seq": self.seq,
            "hash": self.hash,
            "at": format_time(self.at),
            "key_id": self.key_id,
            "signature": self.signature,
        }
