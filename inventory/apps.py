from django.apps import AppConfig
from django.db.models.signals import post_migrate


class InventoryConfig(AppConfig):
    name = "inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bcservice.roles import sync_role_groups

        post_migrate.connect(sync_role_groups, sender=self, dispatch_uid="bc-sync-role-groups")
