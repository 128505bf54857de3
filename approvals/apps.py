"""App config: after every migrate, the minute expiry schedule and the role permissions."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

EXPIRY_SCHEDULE_NAME = "bc.approval-expiry"
EXPIRY_TASK = "approvals.tasks.expire_requests"


def ensure_schedule(using: str = "default", **kwargs: Any) -> None:
    """Create (or repair) the django-q2 schedule; never resets its next run on re-migrate."""
    from django_q.models import Schedule

    wanted = {
        "func": EXPIRY_TASK,
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    }
    schedule, created = Schedule.objects.using(using).get_or_create(
        name=EXPIRY_SCHEDULE_NAME, defaults=wanted
    )
    if not created and any(getattr(schedule, k) != v for k, v in wanted.items()):
        for key, value in wanted.items():
            setattr(schedule, key, value)
        schedule.save(using=using)


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="approvals-schedule")
