"""Identity tables: role mappings for OIDC group claims, per-user identity facts, API tokens.

Roles themselves stay Django groups (bcservice.roles); object scope stays django-guardian
permissions (inventory.selectors). These models only say where they come from.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from bcservice.roles import ALL_ROLES, GLOBAL_READ_ROLES

ROLE_CHOICES = [(role, role) for role in ALL_ROLES]


class RoleMapping(models.Model):
    """One IdP group (a value of the groups claim) grants one role, optionally narrowed in scope.

    Scope is per user in this service (inventory.selectors), not per role: when any mapping that
    matches a user carries a scope, the user sees only the union of those scopes.
    """

    claim_value = models.CharField(
        max_length=255,
        help_text="A value of the groups claim, exactly as the identity provider sends it.",
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    resources = models.ManyToManyField(
        "inventory.Resource",
        blank=True,
        related_name="+",
        help_text="Limit the user to these resources (and the groups below). Empty: no limit.",
    )
    resource_groups = models.ManyToManyField(
        "inventory.ResourceGroup",
        blank=True,
        related_name="+",
        help_text="Limit the user to the members of these groups.",
    )
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(m2m_fields=[resources, resource_groups])

    class Meta:
        ordering = ("claim_value", "role")
        constraints = [
            models.UniqueConstraint(fields=["claim_value", "role"], name="accounts_mapping_unique")
        ]

    def __str__(self) -> str:
        return f"{self.claim_value} → {self.role}"

    def clean(self) -> None:
        super().clean()
        self.claim_value = (self.claim_value or "").strip()
        if not self.claim_value:
            raise ValidationError({"claim_value": "Give the group name the IdP sends."})


def validate_scope_for_role(role: str, has_scope: bool) -> None:
    """Admins and auditors see everything by definition; a scope on them would be a lie."""
    if has_scope and role in GLOBAL_READ_ROLES:
        raise ValidationError(f"The {role} role always sees everything; remove the scope.")


class Identity(models.Model):
    """How a user logs in: a local account (maybe break-glass) or an OIDC subject."""

    class Source(models.TextChoices):
        LOCAL = "local", "local account"
        OIDC = "oidc", "OpenID Connect"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bc_identity"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.LOCAL)
    issuer = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    breakglass = models.BooleanField(
        default=False,
        help_text="May log in with a password when BC_LOCAL_LOGIN=breakglass.",
    )
    idp_groups = models.JSONField(default=list, blank=True, help_text="Groups at last login.")
    last_oidc_login_at = models.DateTimeField(null=True, blank=True)
    last_acr = models.CharField(max_length=255, blank=True)
    last_amr = models.JSONField(default=list, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"],
                condition=Q(source="oidc"),
                name="accounts_identity_unique_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_source_display()})"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """An API token for a service account or an auditor. Only a SHA-256 digest is stored.

    The plain value is shown once, when the token is created; ``prefix`` (its first characters)
    lets people tell tokens apart without revealing them.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bc_api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'grafana exporter'.")
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
