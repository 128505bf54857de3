"""Inventory API serializers. Field names follow ../shared/API.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bcservice.api.serializers import ModelCleanMixin, NameRelatedField, QueryDateTimeField
from inventory import readiness
from inventory.history import DEFAULT_RANGE, MAX_POINTS, MAX_RANGE, group_status, ordered_members
from inventory.models import Resource, ResourceGroup, ResourceStatus, Site
from inventory.status_services import current_evaluation, stored_evaluation


class SiteSerializer(ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "name", "region", "role", "description"]


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    member = serializers.CharField(required=False, help_text="Group statuses: which member.")


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
    last_attempt_at = serializers.DateTimeField(allow_null=True)


def status_payload(
    status: ResourceStatus | None, resource: Resource | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The API status object, as it must be shown now.

    The stored evaluation is overlaid with staleness (``rules.at_read_time``): values older than
    the resource's freshness requirement are shown with ``visibility: lost`` and a ``stale``
    reason, never as current (invariant 9). ``age_seconds`` is the age of the values shown.
    """
    now = now or timezone.now()
    if resource is None and status is not None:
        resource = status.resource
    if resource is not None:
        evaluation = current_evaluation(resource, status, now)
    else:
        evaluation = stored_evaluation(status)
    observed_at = status.observed_at if status is not None else None
    age = (now - observed_at).total_seconds() if observed_at else None
    return {
        "state": evaluation.state,
        "visibility": evaluation.visibility,
        "reasons": evaluation.reason_dicts(),
        "observed_at": observed_at,
        "age_seconds": round(age, 3) if age is not None else None,
        "evaluated_at": status.evaluated_at if status else None,
        "lag_seconds": status.lag_seconds if status else None,
        "lag_bytes": status.lag_bytes if status else None,
        "primary_marker": status.primary_marker if status else "",
        "dr_marker": status.dr_marker if status else "",
        "heartbeat_at": status.heartbeat_at if status else None,
        "replication": status.replication if status else "",
        "primary_role": status.primary_role if status else "",
        "dr_role": status.dr_role if status else "",
        "last_attempt_at": status.last_attempt_at if status else None,
    }


class ResourceSerializer(ModelCleanMixin, serializers.ModelSerializer):
    primary_site = NameRelatedField(slug_field="name", queryset=Site.objects.all())
    dr_site = NameRelatedField(slug_field="name", queryset=Site.objects.all())
    status = serializers.SerializerMethodField()
    # Recorded by executions; read-only here (docs/monitoring.md, "Current site and drills").
    current_site = serializers.SerializerMethodField(
        help_text="The site holding the primary role now: the primary site until a switchover "
        "or failover moved it; a failback returns it."
    )
    away_from_home = serializers.BooleanField(
        read_only=True,
        help_text="True while a switchover or failover is left in place (current_site is not "
        "the primary site), until failback.",
    )
    current_site_changed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_passed_drill_at = serializers.DateTimeField(read_only=True, allow_null=True)
    drill_cadence_days = serializers.SerializerMethodField(
        help_text="The drill cadence of the resource's tier."
    )
    drill_due_at = serializers.SerializerMethodField(
        help_text="When a drill must have passed for the resource not to be drill_overdue."
    )

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
            "current_site",
            "away_from_home",
            "current_site_changed_at",
            "last_passed_drill_at",
            "drill_cadence_days",
            "drill_due_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    @extend_schema_field(serializers.CharField())
    def get_current_site(self, obj: Resource) -> str:
        site = obj.current_site if obj.current_site_id else obj.primary_site
        return site.name

    @extend_schema_field(serializers.IntegerField())
    def get_drill_cadence_days(self, obj: Resource) -> int:
        return readiness.drill_cadence_days(obj.tier)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_drill_due_at(self, obj: Resource) -> datetime | None:
        return readiness.drill_due_at(obj)

    @extend_schema_field(StatusSerializer)
    def get_status(self, obj: Resource) -> dict[str, Any]:
        try:
            status = obj.status
        except ResourceStatus.DoesNotExist:
            status = None
        return status_payload(status, obj)


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    position = serializers.IntegerField()
    state = serializers.CharField()
    visibility = serializers.CharField()


class GroupStatusSerializer(serializers.Serializer):
    state = serializers.CharField()
    visibility = serializers.CharField()
    reasons = ReasonSerializer(many=True)


class GroupSerializer(ModelCleanMixin, serializers.ModelSerializer):
    members = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    member_ids = serializers.PrimaryKeyRelatedField(
        queryset=Resource.objects.all(),
        many=True,
        write_only=True,
        required=False,
        help_text="Resource ids in dependency order: the first runs first.",
    )

    class Meta:
        model = ResourceGroup
        fields = ["id", "name", "tier", "description", "members", "member_ids", "status"]

    def _rolled_up(self, obj: ResourceGroup) -> tuple[Any, list]:
        # Computed once per group and shared by ``members`` and ``status``.
        cache = self.context.setdefault("_group_status", {})
        if obj.pk not in cache:
            cache[obj.pk] = group_status(ordered_members(obj))
        return cache[obj.pk]

    @extend_schema_field(MemberSerializer(many=True))
    def get_members(self, obj: ResourceGroup) -> list[dict[str, Any]]:
        _, members = self._rolled_up(obj)
        return [
            {
                "id": r.id,
                "name": r.name,
                "position": i,
                "state": e.state,
                "visibility": e.visibility,
            }
            for i, (r, e) in enumerate(members)
        ]

    @extend_schema_field(GroupStatusSerializer)
    def get_status(self, obj: ResourceGroup) -> dict[str, Any]:
        evaluation, _ = self._rolled_up(obj)
        return {
            "state": evaluation.state,
            "visibility": evaluation.visibility,
            "reasons": evaluation.reason_dicts(),
        }

    def validate_member_ids(self, value: list[Resource]) -> list[Resource]:
        if len({r.pk for r in value}) != len(value):
            raise serializers.ValidationError("A resource can be a member only once.")
        return value


class HistoryQuerySerializer(serializers.Serializer):
    """``?since=&until=&limit=``: ISO 8601 times; default the last 24 hours."""

    since = QueryDateTimeField(required=False)
    until = QueryDateTimeField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_POINTS)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        until = attrs.get("until") or now
        since = attrs.get("since") or until - DEFAULT_RANGE
        if since >= until:
            raise serializers.ValidationError({"since": ["Must be before 'until'."]})
        if until - since > MAX_RANGE:
            raise serializers.ValidationError(
                {"since": [f"The range may span at most {MAX_RANGE.days} days."]}
            )
        return {"since": since, "until": until, "limit": attrs.get("limit") or MAX_POINTS}


class HistoryPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    lag_seconds = serializers.FloatField(allow_null=True)
    lag_bytes = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()
    visible = serializers.BooleanField()
    resolution_seconds = serializers.IntegerField(help_text="0: raw sample; 300: 5-min rollup")
    samples = serializers.IntegerField()


class HistorySerializer(serializers.Serializer):
    resource = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    count = serializers.IntegerField()
    truncated = serializers.BooleanField()
    next = serializers.CharField(allow_null=True, help_text="URL of the next points, if any")
    points = HistoryPointSerializer(many=True)


class CountsByStateSerializer(serializers.Serializer):
    green = serializers.IntegerField()
    yellow = serializers.IntegerField()
    red = serializers.IntegerField()


class CountsByVisibilitySerializer(serializers.Serializer):
    ok = serializers.IntegerField()
    lost = serializers.IntegerField()


class StatusSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    state = CountsByStateSerializer()
    visibility = CountsByVisibilitySerializer()
    generated_at = serializers.DateTimeField()
