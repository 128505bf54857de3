from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ExecutionsConfig(AppConfig):
    name = "executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from executions.recovery import ensure_schedule
        from executions.scheduled_start import ensure_schedule as ensure_start_schedule

        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="bc-executions-schedule")
        post_migrate.connect(
            ensure_start_schedule, sender=self, dispatch_uid="bc-executions-scheduled-start"
        )
