"""The connectors app: platform connectors, secret resolution and the collection tasks."""

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    # post_migrate is sent once per app with models; django_q's is the one whose tables the
    # schedules live in (this app has no models, so it gets no signal of its own).
    if sender.label != "django_q":
        return
    from connectors.tasks import ensure_schedules

    ensure_schedules(using=kwargs.get("using", "default"))


class ConnectorsConfig(AppConfig):
    name = "connectors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, dispatch_uid="connectors.ensure_schedules")
        from connectors import secrets, vault

        secrets.register_backend("vault", vault.read)  # Vault/OpenBao KV v2 through hvac
        # The admin's "test connection" lives in inventory, which must not import connectors;
        # hand it the function instead.
        from connectors.collection import check_connection
        from inventory import admin as inventory_admin

        inventory_admin.register_connection_tester(check_connection)
