"""Execution API serializers (API.md: executions/{id}/ with steps)."""

from __future__ import annotations

from rest_framework import serializers

from executions.models import Execution, ExecutionStep


class StepSerializer(serializers.ModelSerializer):
    resource = serializers.CharField(source="resource.name")
    duration_seconds = serializers.FloatField(allow_null=True, read_only=True)

    class Meta:
        model = ExecutionStep
        fields = [
            "position",
            "resource",
            "name",
            "description",
            "phase",
            "state",
            "changes_state",
            "idempotent",
            "timeout_seconds",
            "pause_before",
            "started_at",
            "finished_at",
            "duration_seconds",
            "detail",
            "data",
            "attempts",
        ]


class ExecutionSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)
    started_by = serializers.CharField(source="started_by.username")
    request = serializers.IntegerField(source="request_id")

    class Meta:
        model = Execution
        fields = [
            "id",
            "request",
            "kind",
            "state",
            "state_reason",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
            "overrides",
            "override_reason",
            "evidence",
            "runs",
            "steps",
        ]


class StartSerializer(serializers.Serializer):
    confirm = serializers.CharField(max_length=200, help_text="The resource or group name.")
    overrides = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=50
    )
    override_reason = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )


class StartedSerializer(serializers.Serializer):
    execution = serializers.IntegerField()
    state = serializers.CharField()
