"""App config: after every migrate, the minute expiry and request-schedule jobs."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

EXPIRY_SCHEDULE_NAME = "bc.approval-expiry"
EXPIRY_TASK = "approvals.tasks.expire_requests"
SCHEDULES_SCHEDULE_NAME = "bc.request-schedules"
SCHEDULES_TASK = "approvals.tasks.run_schedules"


def ensure_schedule(using: str = "default", **kwargs: Any) -> None:
    """Create (or repair) the django-q2 schedules; never resets their next run on re-migrate."""
    from django_q.models import Schedule

    for name, func in (
        (EXPIRY_SCHEDULE_NAME, EXPIRY_TASK),
        (SCHEDULES_SCHEDULE_NAME, SCHEDULES_TASK),
    ):
        wanted = {
            "func": func,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        }
        schedule, created = Schedule.objects.using(using).get_or_create(name=name, defaults=wanted)
        if not created and any(getattr(schedule, k) != v for k, v in wanted.items()):
            for key, value in wanted.items():
                setattr(schedule, key, value)
            schedule.save(using=using)


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="approvals-schedule")
