"""ApprovalPolicy: what a request of a kind on a tier (and optionally an environment) needs.

Resolution (most specific wins) lives in ``approvals.policies``; this module only holds the data
and the validation that the admin, the API and the data migration share through ``clean()``.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from approvals.choices import RequestKind
from bcservice.roles import APPROVER_ROLES
from inventory.choices import Environment, Tier

DEFAULT_TICKET_PATTERN = r"^(CHG|INC)\d{6,}$"
MAX_VALIDITY_MINUTES = 7 * 24 * 60


class ApprovalPolicy(models.Model):
    name = models.CharField(max_length=100, unique=True)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    kind = models.CharField(
        max_length=16, choices=RequestKind.choices, blank=True, help_text="Empty: any kind."
    )
    environment = models.CharField(
        max_length=16, choices=Environment.choices, blank=True, help_text="Empty: any environment."
    )
    min_approvers = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Distinct people (never the requester) who must approve.",
    )
    required_roles = models.JSONField(
        default=list,
        blank=True,
        help_text="Approver roles that must each be covered by a different person, "
        'e.g. ["approver_it", "approver_business"].',
    )
    require_change_ticket = models.BooleanField(default=True)
    change_ticket_pattern = models.CharField(
        max_length=200,
        blank=True,
        default=DEFAULT_TICKET_PATTERN,
        help_text="Regular expression a change ticket must match; empty: any non-empty text.",
    )
    approval_validity_minutes = models.PositiveIntegerField(
        default=240,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_VALIDITY_MINUTES)],
        help_text="How long a request may wait for approval, and how long approvals stay valid.",
    )
    flap_window_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_VALIDITY_MINUTES)],
        help_text="No new failover/switchover/failback on the same resource within this many "
        "minutes of the last one unless an admin acknowledges. 0: off.",
    )
    allow_precheck_override = models.BooleanField(
        default=False,
        help_text="Let an operator override a failed precheck at start, with a recorded reason.",
    )
    allow_scheduled_start = models.BooleanField(
        default=False,
        help_text="Drills only: let a schedule with auto-start start an approved drill at its "
        "planned time (otherwise an operator starts it).",
    )
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tier", "kind", "environment", "name"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["tier", "kind", "environment"], name="uniq_policy_selector"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        roles = self.required_roles
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            errors.setdefault("required_roles", []).append("A list of role names.")
        else:
            unknown = sorted(set(roles) - set(APPROVER_ROLES))
            if unknown:
                errors.setdefault("required_roles", []).append(
                    f"Unknown approver role(s): {', '.join(unknown)}; "
                    f"use {', '.join(APPROVER_ROLES)}."
                )
            if len(set(roles)) != len(roles):
                errors.setdefault("required_roles", []).append("Each role at most once.")
            if self.min_approvers is not None and len(set(roles)) > self.min_approvers:
                # Each required role needs its own person, so fewer approvers cannot cover them.
                errors.setdefault("min_approvers", []).append(
                    "Must be at least the number of required roles."
                )
        if self.change_ticket_pattern:
            try:
                re.compile(self.change_ticket_pattern)
            except re.error as exc:
                errors.setdefault("change_ticket_pattern", []).append(
                    f"Not a valid regular expression: {exc}."
                )
        if errors:
            raise ValidationError(errors)
