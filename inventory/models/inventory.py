"""Inventory: sites, resources, ordered resource groups.

Validation that belongs to one object lives in ``clean()`` so the admin, the API serializers and
the services all refuse the same bad input with the same field errors.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from inventory import connection_settings
from inventory.choices import DEFAULT_INTERVAL_BY_TIER, Environment, Platform, SiteRole, Tier

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# A reference to a secret, never the secret: "vault:kv/path#key", "env:NAME", "file:name" or a
# bare path such as "lab/postgres". Spaces and quotes are refused, and so is anything long.
SECRET_REF_RE = re.compile(r"^(?:(?:vault|env|file):)?[A-Za-z0-9_./#-]{1,200}$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,126}$")
# A connector's per-call timeout. The collection guard waits twice this plus one second, which
# must stay under the worker's task timeout (BC_Q_TIMEOUT, 900 s); an unbounded value (1e308)
# made the lease arithmetic overflow (HTTP 500 on collect-now, a crash in the sweep).
MAX_TIMEOUT_SECONDS = 300.0


def validate_name(value: str) -> None:
    if not NAME_RE.match(value or ""):
        raise ValidationError(
            "Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )


class Site(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    region = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=SiteRole.choices)
    description = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Resource(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    platform = models.CharField(max_length=16, choices=Platform.choices, db_index=True)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, db_index=True)
    environment = models.CharField(max_length=16, choices=Environment.choices, db_index=True)
    owner = models.CharField(max_length=200)
    primary_site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="primary_for")
    dr_site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="dr_for")
    connection = models.JSONField(
        default=dict, blank=True, help_text="Platform connection settings; never secrets."
    )
    secret_ref = models.CharField(
        max_length=200,
        blank=True,
        help_text="Where credentials live, e.g. vault:kv/db/orders or lab/postgres. Not a secret.",
    )
    rpo_target_seconds = models.PositiveIntegerField(default=60)
    yellow_lag_seconds = models.PositiveIntegerField(default=30)
    red_lag_seconds = models.PositiveIntegerField(default=60)
    freshness_seconds = models.PositiveIntegerField(
        default=120, help_text="An observation older than this is stale."
    )
    collect_interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty: from the tier (tier 1: 15 s, tier 2: 60 s, tier 3: 300 s).",
    )
    timeout_seconds = models.FloatField(default=5.0, validators=[MinValueValidator(0.1)])
    heartbeat_table = models.CharField(max_length=127, blank=True)
    heartbeat_column = models.CharField(max_length=127, blank=True, default="ts")
    heartbeat_max_age_seconds = models.PositiveIntegerField(default=120)
    enabled = models.BooleanField(default=True, db_index=True)
    # Written only by executions (inventory.services.resource_record_move / _record_drill),
    # never by the configuration path (admin, API, CMDB keep what is stored).
    current_site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        related_name="current_for",
        null=True,
        blank=True,
        help_text="Primary role now (empty: the primary site); set by executions.",
    )
    current_site_changed_at = models.DateTimeField(null=True, blank=True)
    last_passed_drill_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last drill of this resource passed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    # Fields the executions own; configuration saves carry the stored values over.
    EXECUTION_OWNED_FIELDS = ("current_site", "current_site_changed_at", "last_passed_drill_at")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def interval_seconds(self) -> int:
        return self.collect_interval_seconds or DEFAULT_INTERVAL_BY_TIER.get(self.tier, 60)

    @property
    def current_site_id_or_home(self) -> int | None:
        """The site holding the primary role now (the primary site until something moved it)."""
        return self.current_site_id or self.primary_site_id

    @property
    def away_from_home(self) -> bool:
        """True while a switchover or failover is left in place (until failback)."""
        return self.current_site_id_or_home != self.primary_site_id

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.primary_site_id and self.primary_site_id == self.dr_site_id:
            errors.setdefault("dr_site", []).append(
                "The DR site must differ from the primary site."
            )
        if self.current_site_id and self.current_site_id not in (
            self.primary_site_id,
            self.dr_site_id,
        ):
            errors.setdefault("primary_site", []).append(
                f"The primary role is currently at {self.current_site}, which would be neither "
                "the primary nor the DR site; fail back (or move it) before changing the sites."
            )
        yellow, red = self.yellow_lag_seconds, self.red_lag_seconds
        if yellow is not None and red is not None and yellow > red:
            errors.setdefault("yellow_lag_seconds", []).append(
                "The yellow threshold must not be above the red threshold."
            )
        if self.platform:
            for key, messages in connection_settings.validate(
                self.platform, self.connection
            ).items():
                errors.setdefault("connection", []).extend(f"{key}: {m}" for m in messages)
        if self.timeout_seconds is not None and not self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            errors.setdefault("timeout_seconds", []).append(
                f"Ensure this value is less than or equal to {MAX_TIMEOUT_SECONDS:g}."
            )
        if self.secret_ref and not SECRET_REF_RE.match(self.secret_ref):
            errors.setdefault("secret_ref", []).append(
                "A secret reference looks like vault:kv/path, env:NAME or file:name."
            )
        if self.heartbeat_table and not IDENT_RE.match(self.heartbeat_table):
            errors.setdefault("heartbeat_table", []).append("Not a valid table name.")
        if self.heartbeat_column and not IDENT_RE.match(self.heartbeat_column):
            errors.setdefault("heartbeat_column", []).append("Not a valid column name.")
        if errors:
            raise ValidationError(errors)


class ResourceGroup(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    tier = models.PositiveSmallIntegerField(choices=Tier.choices)
    description = models.TextField(blank=True)
    resources = models.ManyToManyField(
        Resource, through="GroupMembership", related_name="resource_groups"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupMembership(models.Model):
    """A resource's place in a group: lower positions run first (dependency order)."""

    group = models.ForeignKey(ResourceGroup, on_delete=models.CASCADE, related_name="memberships")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="memberships")
    position = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["group", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["group", "resource"], name="uniq_group_resource"),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}#{self.position}: {self.resource.name}"
