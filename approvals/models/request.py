"""ExecutionRequest (what someone asks to run, and where it stands) and Approval (one vote).

Requests are immutable once created except through ``approvals.services``: only the transition
service sets ``state``. An Approval binds to what was approved through the policy and scope
fingerprints it records; when either no longer matches the request, the vote no longer counts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from approvals.choices import Decision, RequestKind, RequestState
from approvals.models.breakglass import BreakGlassGrant
from approvals.models.policy import ApprovalPolicy
from inventory.models import Resource, ResourceGroup, Site

TICKET_MAX_LENGTH = 64


class ExecutionRequest(models.Model):
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    resource = models.ForeignKey(
        Resource, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    group = models.ForeignKey(
        ResourceGroup, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    target_site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    change_ticket = models.CharField(max_length=TICKET_MAX_LENGTH, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bc_requests"
    )
    state = models.CharField(
        max_length=20,
        choices=RequestState.choices,
        default=RequestState.PENDING_APPROVAL,
        db_index=True,
    )
    state_reason = models.CharField(max_length=500, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # The policy the request was resolved to, frozen: later edits do not change what this
    # request demanded; they void its approvals instead (see services.request_refresh).
    policy = models.ForeignKey(
        ApprovalPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    policy_snapshot = models.JSONField(default=dict)
    policy_fingerprint = models.CharField(max_length=64)
    scope_fingerprint = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    breakglass_grant = models.ForeignKey(
        BreakGlassGrant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
        help_text="Set when the request started under a break-glass grant instead of approvals.",
    )
    flap_acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    flap_acknowledged_at = models.DateTimeField(null=True, blank=True)
    flap_acknowledgement = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(resource__isnull=False, group__isnull=True)
                    | Q(resource__isnull=True, group__isnull=False)
                ),
                name="request_scope_exactly_one",
            ),
            models.CheckConstraint(
                condition=Q(state__in=RequestState.values), name="request_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.scope_name} -> {self.target_site_name}"

    @property
    def scope_name(self) -> str:
        scope = self.resource if self.resource_id else self.group
        return scope.name if scope is not None else "?"

    @property
    def target_site_name(self) -> str:
        return self.target_site.name if self.target_site_id else "?"


class Approval(models.Model):
    """One person's vote (approve or deny) with a comment and what they saw when voting."""

    request = models.ForeignKey(
        ExecutionRequest, on_delete=models.PROTECT, related_name="approvals"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bc_approvals"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    # Approver roles the person held when voting: coverage is computed from these.
    roles = models.JSONField(default=list)
    # Readiness of each resource in scope at the time of the vote (state, visibility, lag, reasons).
    readiness = models.JSONField(default=list)
    policy_fingerprint = models.CharField(max_length=64)
    scope_fingerprint = models.CharField(max_length=64)
    at = models.DateTimeField()
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # One live vote per person per request, enforced by the database.
            models.UniqueConstraint(
                fields=["request", "approver"],
                condition=Q(voided_at__isnull=True),
                name="uniq_live_vote_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.approver_id} on #{self.request_id}"
