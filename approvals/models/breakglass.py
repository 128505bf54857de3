"""Break-glass: who may open a grant (an admin-maintained list) and the grants themselves.

A grant lets its grantee start a request in its scope without the approvals policy demands, for
a bounded time; it needs a reason, is audited, notifies, and stays on the review list until an
approver signs it off afterwards.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from inventory.models import Resource, ResourceGroup


class BreakGlassEligibility(models.Model):
    """Membership of the break-glass set; maintained by admins in the Django admin."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="breakglass_eligibility"
    )
    note = models.CharField(max_length=300, blank=True, help_text="Why this person may.")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "break-glass eligibility"
        verbose_name_plural = "break-glass eligibility"

    def __str__(self) -> str:
        return str(self.user)


class BreakGlassGrant(models.Model):
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="breakglass_grants"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    resource = models.ForeignKey(
        Resource, on_delete=models.PROTECT, null=True, blank=True, related_name="breakglass_grants"
    )
    group = models.ForeignKey(
        ResourceGroup,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="breakglass_grants",
    )
    reason = models.TextField()
    minutes = models.PositiveIntegerField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(resource__isnull=False, group__isnull=True)
                    | Q(resource__isnull=True, group__isnull=False)
                ),
                name="breakglass_scope_exactly_one",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gte=models.F("starts_at")), name="breakglass_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        scope = self.resource if self.resource_id else self.group
        return f"break-glass #{self.pk} on {scope} for {self.grantee}"

    def is_active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at
