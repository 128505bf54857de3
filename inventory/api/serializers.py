"""Inventory API serializers. Field names follow ../shared/API.md."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bcservice.api.serializers import ModelCleanMixin
from inventory.models import Resource, ResourceGroup, ResourceStatus, Site
from inventory.selectors import group_members


class SiteSerializer(ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "name", "region", "role", "description"]


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class StatusSerializer(serializers.Serializer):
    """The status object of API.md. ``age_seconds`` is how old the values shown are."""

    state = serializers.CharField()
    visibility = serializers.CharField()
    reasons = ReasonSerializer(many=True)
    observed_at = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.FloatField(allow_null=True)
    evaluated_at = serializers.DateTimeField(allow_null=True)
    lag_seconds = serializers.FloatField(allow_null=True)
    lag_bytes = serializers.IntegerField(allow_null=True)
    primary_marker = serializers.CharField(allow_blank=True)
    dr_marker = serializers.CharField(allow_blank=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    replication = serializers.CharField(allow_blank=True)
    primary_role = serializers.CharField(allow_blank=True)
    dr_role = serializers.CharField(allow_blank=True)


def status_payload(status: ResourceStatus | None) -> dict[str, Any]:
    if status is None:
        return {
            "state": "red",
            "visibility": "lost",
            "reasons": [{"code": "never_observed", "message": "No observation has been made yet."}],
            "observed_at": None,
            "age_seconds": None,
            "evaluated_at": None,
            "lag_seconds": None,
            "lag_bytes": None,
            "primary_marker": "",
            "dr_marker": "",
            "heartbeat_at": None,
            "replication": "",
            "primary_role": "",
            "dr_role": "",
        }
    age = (timezone.now() - status.observed_at).total_seconds() if status.observed_at else None
    return {
        "state": status.state,
        "visibility": status.visibility,
        "reasons": status.reasons,
        "observed_at": status.observed_at,
        "age_seconds": round(age, 3) if age is not None else None,
        "evaluated_at": status.evaluated_at,
        "lag_seconds": status.lag_seconds,
        "lag_bytes": status.lag_bytes,
        "primary_marker": status.primary_marker,
        "dr_marker": status.dr_marker,
        "heartbeat_at": status.heartbeat_at,
        "replication": status.replication,
        "primary_role": status.primary_role,
        "dr_role": status.dr_role,
    }


class ResourceSerializer(ModelCleanMixin, serializers.ModelSerializer):
    primary_site = serializers.SlugRelatedField(slug_field="name", queryset=Site.objects.all())
    dr_site = serializers.SlugRelatedField(slug_field="name", queryset=Site.objects.all())
    status = serializers.SerializerMethodField()

    class Meta:
        model = Resource
        fields = [
            "id",
            "name",
            "platform",
            "tier",
            "environment",
            "owner",
            "primary_site",
            "dr_site",
            "connection",
            "secret_ref",
            "rpo_target_seconds",
            "yellow_lag_seconds",
            "red_lag_seconds",
            "freshness_seconds",
            "collect_interval_seconds",
            "timeout_seconds",
            "heartbeat_table",
            "heartbeat_column",
            "heartbeat_max_age_seconds",
            "enabled",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    @extend_schema_field(StatusSerializer)
    def get_status(self, obj: Resource) -> dict[str, Any]:
        try:
            status = obj.status
        except ResourceStatus.DoesNotExist:
            status = None
        return status_payload(status)


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    position = serializers.IntegerField()


class GroupSerializer(ModelCleanMixin, serializers.ModelSerializer):
    members = serializers.SerializerMethodField()
    member_ids = serializers.PrimaryKeyRelatedField(
        queryset=Resource.objects.all(),
        many=True,
        write_only=True,
        required=False,
        help_text="Resource ids in dependency order: the first runs first.",
    )

    class Meta:
        model = ResourceGroup
        fields = ["id", "name", "tier", "description", "members", "member_ids"]

    @extend_schema_field(MemberSerializer(many=True))
    def get_members(self, obj: ResourceGroup) -> list[dict[str, Any]]:
        return [
            {"id": r.id, "name": r.name, "position": i} for i, r in enumerate(group_members(obj))
        ]

    def validate_member_ids(self, value: list[Resource]) -> list[Resource]:
        if len({r.pk for r in value}) != len(value):
            raise serializers.ValidationError("A resource can be a member only once.")
        return value
