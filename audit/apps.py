"""The audit app: the hash-chained log, checkpoints, verification and exports."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    from audit.tasks import ensure_schedule

    ensure_schedule(using=kwargs.get("using", "default"))


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Sent after every migrate (django_q's tables exist by then: all migrations have run).
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="audit-checkpoint-schedule")
