"""Approvals API serializers: input checks (400 with field errors) and the shapes of API.md.

Input serializers only validate and resolve ids through the caller's visible scope; the
services decide everything else. Output serializers read through approvals.selectors so the
API and the UI see the same ``approvals_required`` and ``can_approve``/``why_not``.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals import selectors, services
from approvals.choices import RequestKind
from approvals.models import ApprovalPolicy, BreakGlassGrant, ExecutionRequest
from approvals.models.request import TICKET_MAX_LENGTH
from approvals.policies import describe
from approvals.services.requests import REASON_MAX_LENGTH
from approvals.services.votes import COMMENT_MAX_LENGTH
from inventory.choices import Environment
from inventory.models import Site
from inventory.selectors import groups_for, resources_for

# Larger ids cannot exist (BigAutoField); refusing them early keeps the database out of it.
MAX_ID = 2**63 - 1


def _id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class ScopeMixin:
    """Resolves ``resource``/``group`` ids through the user's visible inventory: an id the
    user may not see is reported exactly like one that does not exist."""

    def resolve_scope(self, attrs: dict[str, Any], field: str | None = None) -> dict[str, Any]:
        user = self.context["request"].user
        resource_id, group_id = attrs.get("resource"), attrs.get("group")
        key = field or "non_field_errors"
        if (resource_id is None) == (group_id is None):
            raise serializers.ValidationError({key: ["Give exactly one of resource or group."]})
        if resource_id is not None:
            resource = resources_for(user).filter(pk=resource_id).first()
            if resource is None:
                raise serializers.ValidationError({field or "resource": ["Unknown resource."]})
            return {"resource": resource, "group": None}
        group = groups_for(user).filter(pk=group_id).first()
        if group is None:
            raise serializers.ValidationError({field or "group": ["Unknown group."]})
        return {"resource": None, "group": group}


class RequestCreateSerializer(ScopeMixin, serializers.Serializer):
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    resource = _id_field(required=False, allow_null=True)
    group = _id_field(required=False, allow_null=True)
    target_site = serializers.CharField(
        max_length=100, help_text="Site name (or id) to move the primary to / drill at."
    )
    change_ticket = serializers.CharField(
        max_length=TICKET_MAX_LENGTH, required=False, allow_blank=True, default=""
    )
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)

    def validate_target_site(self, value: str) -> Site:
        site = Site.objects.filter(name=value).first()
        if site is None and value.isdigit() and int(value) <= MAX_ID:
            site = Site.objects.filter(pk=int(value)).first()
        if site is None:
            raise serializers.ValidationError("Unknown site.")
        return site

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.update(self.resolve_scope(attrs))
        return attrs


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(
        max_length=COMMENT_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


class PolicySummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    tier = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField(allow_null=True)
    environment = serializers.CharField(allow_null=True)
    min_approvers = serializers.IntegerField(allow_null=True)
    required_roles = serializers.ListField(child=serializers.CharField())
    require_change_ticket = serializers.BooleanField()
    change_ticket_pattern = serializers.CharField(allow_blank=True)
    approval_validity_seconds = serializers.IntegerField()
    flap_window_seconds = serializers.IntegerField()


class ApprovalsRequiredSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Distinct approvers needed.")
    roles = serializers.ListField(child=serializers.CharField())
    received = serializers.IntegerField()
    covered = serializers.DictField(child=serializers.CharField())
    missing_roles = serializers.ListField(child=serializers.CharField())
    still_needed = serializers.IntegerField()
    satisfied = serializers.BooleanField()


class ApprovalRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    approver = serializers.CharField()
    approver_id = serializers.IntegerField()
    decision = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    role_counted = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()
    readiness = serializers.ListField(child=serializers.DictField())
    policy_fingerprint = serializers.CharField()
    valid = serializers.BooleanField()
    voided_at = serializers.DateTimeField(allow_null=True)
    void_reason = serializers.CharField(allow_blank=True)


class FlappingSerializer(serializers.Serializer):
    window_seconds = serializers.IntegerField()
    last_move_at = serializers.DateTimeField(allow_null=True)
    window_ends_at = serializers.DateTimeField(allow_null=True)
    acknowledged = serializers.BooleanField()
    blocked = serializers.BooleanField()


class RequestSerializer(serializers.ModelSerializer):
    """A request as listed: state, scope, what it needs and what it has."""

    resource_name = serializers.CharField(source="resource.name", default=None, read_only=True)
    group_name = serializers.CharField(
        source="group.name", default=None, read_only=True, allow_null=True
    )
    target_site = serializers.CharField(source="target_site.name", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    policy = serializers.SerializerMethodField()
    approvals_required = serializers.SerializerMethodField()

    class Meta:
        model = ExecutionRequest
        fields = [
            "id",
            "kind",
            "resource",
            "resource_name",
            "group",
            "group_name",
            "target_site",
            "target_site_id",
            "reason",
            "change_ticket",
            "requested_by",
            "requested_by_id",
            "state",
            "state_reason",
            "state_changed_at",
            "created_at",
            "expires_at",
            "approved_at",
            "started_at",
            "finished_at",
            "breakglass_grant",
            "policy",
            "policy_fingerprint",
            "approvals_required",
        ]
        read_only_fields = fields

    @extend_schema_field(PolicySummarySerializer)
    def get_policy(self, obj: ExecutionRequest) -> dict[str, Any]:
        return describe(obj.policy_snapshot)

    @extend_schema_field(ApprovalsRequiredSerializer)
    def get_approvals_required(self, obj: ExecutionRequest) -> dict[str, Any]:
        return selectors.approvals_required(obj)


class RequestDetailSerializer(RequestSerializer):
    """One request with its votes, the anti-flapping status and what the current user may do."""

    # A plain string here: the enum lives on the list component (RequestStateEnum); declaring it
    # twice makes drf-spectacular warn about an unresolvable enum name (CI fails on warnings).
    state = serializers.CharField(read_only=True, help_text="See RequestStateEnum.")
    approvals = serializers.SerializerMethodField()
    flapping = serializers.SerializerMethodField()
    flap_acknowledged_by = serializers.CharField(
        source="flap_acknowledged_by.username", default=None, read_only=True, allow_null=True
    )
    can_approve = serializers.SerializerMethodField()
    why_not = serializers.SerializerMethodField()
    can_deny = serializers.SerializerMethodField()
    why_not_deny = serializers.SerializerMethodField()
    can_cancel = serializers.SerializerMethodField()
    can_start = serializers.SerializerMethodField()
    why_not_start = serializers.SerializerMethodField()
    start_blocker = serializers.SerializerMethodField()

    class Meta(RequestSerializer.Meta):
        fields = [
            *RequestSerializer.Meta.fields,
            "approvals",
            "flapping",
            "flap_acknowledged_by",
            "flap_acknowledged_at",
            "flap_acknowledgement",
            "can_approve",
            "why_not",
            "can_deny",
            "why_not_deny",
            "can_cancel",
            "can_start",
            "why_not_start",
            "start_blocker",
        ]
        read_only_fields = fields

    def _actions(self, obj: ExecutionRequest) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_actions_cache", {})
        if obj.pk not in cache:
            request = self.context["request"]
            cache[obj.pk] = selectors.user_actions(obj, request.user, login=request)
        return cache[obj.pk]

    @extend_schema_field(ApprovalRowSerializer(many=True))
    def get_approvals(self, obj: ExecutionRequest) -> list[dict[str, Any]]:
        return selectors.approval_rows(obj)

    @extend_schema_field(FlappingSerializer)
    def get_flapping(self, obj: ExecutionRequest) -> dict[str, Any]:
        return selectors.flapping(obj)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_can_approve(self, obj: ExecutionRequest) -> bool:
        return self._actions(obj)["can_approve"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_why_not(self, obj: ExecutionRequest) -> str:
        return self._actions(obj)["why_not"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_can_deny(self, obj: ExecutionRequest) -> bool:
        return self._actions(obj)["can_deny"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_why_not_deny(self, obj: ExecutionRequest) -> str:
        return self._actions(obj)["why_not_deny"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_can_cancel(self, obj: ExecutionRequest) -> bool:
        return self._actions(obj)["can_cancel"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_can_start(self, obj: ExecutionRequest) -> bool:
        return self._actions(obj)["can_start"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_why_not_start(self, obj: ExecutionRequest) -> str:
        return self._actions(obj)["why_not_start"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_start_blocker(self, obj: ExecutionRequest) -> str:
        return self._actions(obj)["start_blocker"]


class PolicySerializer(serializers.ModelSerializer):
    # Blank means "any": declared so that the schema's enum admits "" as the API answers it.
    kind = serializers.ChoiceField(
        choices=RequestKind.choices, allow_blank=True, read_only=True, help_text="Empty: any kind."
    )
    environment = serializers.ChoiceField(
        choices=Environment.choices,
        allow_blank=True,
        read_only=True,
        help_text="Empty: any environment.",
    )

    class Meta:
        model = ApprovalPolicy
        fields = [
            "id",
            "name",
            "tier",
            "kind",
            "environment",
            "min_approvers",
            "required_roles",
            "require_change_ticket",
            "change_ticket_pattern",
            "approval_validity_minutes",
            "flap_window_minutes",
            "description",
            "updated_at",
        ]
        read_only_fields = fields


class PolicyPreviewQuerySerializer(ScopeMixin, serializers.Serializer):
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    resource = _id_field(required=False, allow_null=True)
    group = _id_field(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.update(self.resolve_scope(attrs))
        return attrs


class ResolvedForSerializer(serializers.Serializer):
    tier = serializers.IntegerField()
    environment = serializers.CharField()
    kind = serializers.CharField()


class PolicyPreviewSerializer(serializers.Serializer):
    resolved_for = ResolvedForSerializer()
    policy = PolicySummarySerializer(allow_null=True)


class BreakGlassScopeSerializer(serializers.Serializer):
    resource = _id_field(required=False, allow_null=True)
    group = _id_field(required=False, allow_null=True)


class BreakGlassCreateSerializer(ScopeMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    scope = BreakGlassScopeSerializer()
    minutes = serializers.IntegerField(min_value=1)

    def validate_minutes(self, value: int) -> int:
        limit = services.max_minutes()
        if value > limit:
            raise serializers.ValidationError(f"At most {limit} minutes.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.update(self.resolve_scope(attrs.pop("scope"), field="scope"))
        return attrs


class BreakGlassSerializer(serializers.ModelSerializer):
    grantee = serializers.CharField(source="grantee.username", read_only=True)
    opened_by = serializers.CharField(source="opened_by.username", read_only=True)
    resource_name = serializers.CharField(source="resource.name", default=None, read_only=True)
    group_name = serializers.CharField(
        source="group.name", default=None, read_only=True, allow_null=True
    )
    closed_by = serializers.CharField(
        source="closed_by.username", default=None, read_only=True, allow_null=True
    )
    reviewed_by = serializers.CharField(
        source="reviewed_by.username", default=None, read_only=True, allow_null=True
    )
    active = serializers.SerializerMethodField()
    needs_review = serializers.SerializerMethodField()

    class Meta:
        model = BreakGlassGrant
        fields = [
            "id",
            "grantee",
            "opened_by",
            "resource",
            "resource_name",
            "group",
            "group_name",
            "reason",
            "minutes",
            "starts_at",
            "ends_at",
            "active",
            "closed_at",
            "closed_by",
            "needs_review",
            "reviewed_by",
            "reviewed_at",
            "review_comment",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_active(self, obj: BreakGlassGrant) -> bool:
        return obj.is_active(timezone.now())

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_needs_review(self, obj: BreakGlassGrant) -> bool:
        return obj.reviewed_at is None and obj.ends_at <= timezone.now()
