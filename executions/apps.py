from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ExecutionsConfig(AppConfig):
    name = "executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from executions.recovery import ensure_schedule

        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="bc-executions-schedule")
