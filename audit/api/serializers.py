"""Audit API serializers: query checks (400 with field errors) and read-only output shapes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.chain import ROW_FIELDS, format_time
from audit.models import AuditCheckpoint, AuditEvent

MAX_INT = 2**63 - 1  # larger values cannot be stored; refuse them before the database sees them
FORMATS = ("json", "jsonl", "csv")


class TimeRangeQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Inclusive, ISO 8601.")
    until = serializers.DateTimeField(required=False, help_text="Exclusive, ISO 8601.")
    format = serializers.ChoiceField(
        choices=FORMATS,
        default="json",
        help_text="json: cursor-paginated pages; jsonl and csv: one streamed file.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since >= until:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        return attrs


class EventQuerySerializer(TimeRangeQuerySerializer):
    kind = serializers.CharField(
        required=False, max_length=100, help_text="Action prefix, e.g. 'request.'."
    )
    actor = serializers.CharField(required=False, max_length=150, help_text="Actor user name.")
    actor_id = serializers.IntegerField(required=False, min_value=0, max_value=MAX_INT)
    object_type = serializers.CharField(required=False, max_length=100)
    object_id = serializers.CharField(required=False, max_length=64)
    from_seq = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, help_text="First sequence number."
    )
    to_seq = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, help_text="Last sequence number."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        first, last = attrs.get("from_seq"), attrs.get("to_seq")
        if first is not None and last is not None and first > last:
            raise serializers.ValidationError({"to_seq": ["Must not be below from_seq."]})
        return attrs


class HistoryQuerySerializer(TimeRangeQuerySerializer):
    actor = serializers.CharField(required=False, max_length=150, help_text="User name.")
    object_id = serializers.CharField(required=False, max_length=64)


class EventSerializer(serializers.ModelSerializer):
    at = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ROW_FIELDS
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_at(self, event: AuditEvent) -> str:
        # Exactly the text the hash covers, so a page can be re-hashed as it is.
        return format_time(event.at)


class CheckpointSerializer(serializers.ModelSerializer):
    """A signed checkpoint document as exported, plus where it was exported to."""

    format = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    at = serializers.SerializerMethodField()

    class Meta:
        model = AuditCheckpoint
        fields = ("format", "version", "seq", "hash", "at", "key_id", "signature", "exported_to")
        read_only_fields = fields

    def get_format(self, checkpoint: AuditCheckpoint) -> str:
        return checkpoint.document()["format"]

    def get_version(self, checkpoint: AuditCheckpoint) -> int:
        return checkpoint.document()["version"]

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_at(self, checkpoint: AuditCheckpoint) -> str:
        return format_time(checkpoint.at)


class CheckpointStatusSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    sources = serializers.ListField(child=serializers.CharField())
    found = serializers.IntegerField()
    verified = serializers.IntegerField()
    latest_seq = serializers.IntegerField(allow_null=True)
    latest_at = serializers.CharField(allow_null=True)
    problems = serializers.ListField(child=serializers.CharField())


class VerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    events_checked = serializers.IntegerField()
    first_bad_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    missing_tail_after = serializers.IntegerField(allow_null=True)
    checkpoints = CheckpointStatusSerializer()


class PublicKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    pem = serializers.CharField()


class HistorySourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    model = serializers.CharField()
    description = serializers.CharField()
    url = serializers.CharField()


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class HistoryRecordSerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=("created", "changed", "deleted"))
    actor_id = serializers.IntegerField(allow_null=True)
    actor_name = serializers.CharField()
    object_id = serializers.CharField()
    object_name = serializers.CharField()
    changes = ChangeSerializer(many=True)
    values = serializers.DictField()
    reason = serializers.CharField()
