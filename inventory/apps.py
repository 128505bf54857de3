from django.apps import AppConfig
from django.db.models.signals import post_migrate


class InventoryConfig(AppConfig):
    name = "inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bcservice.roles import sync_role_groups

        # After every app's migrate (no sender): the admin/auditor groups must get the
        # permissions of apps that migrate after inventory too. The sync is idempotent.
        post_migrate.connect(sync_role_groups, dispatch_uid="bc-sync-role-groups")
