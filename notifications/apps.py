"""The notifications app: routes, deliveries through channels, and their retry schedule."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    # The schedule lives in django_q's tables: act on its post_migrate, like connectors does.
    if sender.label != "django_q":
        return
    from notifications.tasks import ensure_schedules

    ensure_schedules(using=kwargs.get("using", "default"))


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, dispatch_uid="notifications.ensure_schedules")
