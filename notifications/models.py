"""Notification routes (admin configuration), events, deliveries and open alerts.

- ``Route``: which events (kind patterns, tiers, environments) go to which channel and target.
  Channel secrets (PagerDuty routing key, Slack webhook URL) are never stored: the route holds a
  secret *reference* resolved through ``connectors.secrets`` when a delivery is attempted.
- ``Event``: one notification as the caller described it, kept for the record.
- ``Delivery``: one event to one route, with attempts, the last (sanitized) error and when to
  retry; the worker delivers it, never the caller.
- ``Alert``: the open condition of a resource (red, or visibility lost), so that the same
  condition is not re-sent on every collection cycle and is resolved when the status recovers.

Resources are referred to by id only: notifications imports no other app (arrows point down).
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from simple_history.models import HistoricalRecords

from notifications.choices import (
    ENVIRONMENTS,
    PRODUCTION,
    SECRET_CHANNELS,
    TIERS,
    Action,
    Channel,
    DeliveryStatus,
)

# "status.red", "request.*" (a prefix), or "*" (everything).
_KIND_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")
_REF_SCHEME = re.compile(r"^(?P<scheme>[a-z][a-z0-9_]*):(?P<rest>.+)$")


def split_list(text: str) -> list[str]:
    """Items of a comma- or whitespace-separated admin field."""
    return [item for item in re.split(r"[,\s]+", text or "") if item]


class Route(models.Model):
    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    kinds = models.CharField(
        max_length=500,
        help_text='Event kinds, comma-separated: exact ("status.red"), a prefix ("request.*") '
        'or "*" for every event.',
    )
    tiers = models.JSONField(default=list, blank=True, help_text="Tiers, e.g. [1, 2]; empty: any.")
    environments = models.JSONField(
        default=list,
        blank=True,
        help_text='Environments, e.g. ["production"]; empty: any (not on an on-call route).',
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(
        max_length=1000,
        blank=True,
        help_text="E-mail: addresses, comma-separated. gds: the recipient. "
        "Empty for PagerDuty and Slack, whose target is a secret (see the secret reference).",
    )
    secret_ref = models.CharField(
        max_length=200,
        blank=True,
        help_text="Where the channel's secret lives, e.g. vault:bcservice/notify/pagerduty-db "
        "holding {routing_key} (PagerDuty) or {webhook_url} (Slack); env:NAME or file:NAME too.",
    )
    production_on_call = models.BooleanField(
        default=False,
        help_text="Pages the production on-call: only production events are ever delivered here.",
    )
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def kind_patterns(self) -> list[str]:
        return split_list(self.kinds)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        patterns = self.kind_patterns
        bad = [p for p in patterns if not _KIND_PATTERN.match(p)]
        if not patterns or bad:
            errors["kinds"] = f"Not an event kind or pattern: {', '.join(bad) or '(empty)'}."
        if not isinstance(self.tiers, list) or any(t not in TIERS for t in self.tiers):
            errors["tiers"] = f"A list of tiers among {list(TIERS)}."
        envs = self.environments
        if not isinstance(envs, list) or any(e not in ENVIRONMENTS for e in envs):
            errors["environments"] = f"A list of environments among {list(ENVIRONMENTS)}."
        elif self.production_on_call and envs != [PRODUCTION]:
            # Invariant 8: a non-production event can never match an on-call route.
            errors["environments"] = 'A production on-call route takes ["production"] only.'
        errors.update(self._channel_errors())
        if errors:
            raise ValidationError(errors)

    def _channel_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        ref = (self.secret_ref or "").strip()
        if ref and not _REF_SCHEME.match(ref):
            errors["secret_ref"] = "A reference with its scheme (vault:…, env:…, file:…)."  # noqa: S105
        elif ref and _REF_SCHEME.match(ref)["scheme"] not in _known_schemes():
            # Catches a raw webhook URL ("https:…") pasted where the reference belongs.
            errors["secret_ref"] = f"Unknown scheme; use one of {', '.join(_known_schemes())}."
        if self.channel in SECRET_CHANNELS:
            if not ref:
                errors["secret_ref"] = "The key or webhook URL is a secret: reference it."  # noqa: S105
            if self.target.strip():
                errors["target"] = "Leave empty: the key or URL belongs behind the reference."
        elif self.channel == Channel.EMAIL:
            addresses = split_list(self.target)
            try:
                if not addresses:
                    raise ValidationError("empty")
                for address in addresses:
                    validate_email(address)
            except ValidationError:
                errors["target"] = "One or more e-mail addresses, comma-separated."
        elif self.channel == Channel.GDS and not self.target.strip():
            errors["target"] = "The gds_notification recipient."
        return errors


def _known_schemes() -> list[str]:
    # The resolver is connectors' (the one place secrets are resolved); read lazily.
    from connectors.secrets import BACKENDS

    return sorted(BACKENDS)


class Event(models.Model):
    kind = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=300)
    tier = models.PositiveSmallIntegerField(null=True, blank=True)
    environment = models.CharField(max_length=16, blank=True)
    resource_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"


class Delivery(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    route = models.ForeignKey(Route, on_delete=models.SET_NULL, null=True, blank=True)
    route_name = models.CharField(max_length=100)  # kept when the route is deleted
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=8, choices=Action.choices)
    dedup_key = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)  # sanitized, never a secret
    detail = models.CharField(max_length=200, blank=True)  # what the channel said on success
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notif_due_idx")]

    def __str__(self) -> str:
        return f"{self.route_name} {self.action} ({self.status})"


class Alert(models.Model):
    """One row per resource that ever alerted; ``condition`` empty means nothing is open."""

    resource_id = models.BigIntegerField(primary_key=True)
    condition = models.CharField(max_length=20, blank=True)
    dedup_key = models.CharField(max_length=255, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    opening_event = models.ForeignKey(
        Event, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"resource {self.resource_id}: {self.condition or 'ok'}"
