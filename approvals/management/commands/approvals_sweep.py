"""``manage.py approvals_sweep``: run the expiry/re-binding sweep now (the worker runs it every
minute); useful after an outage of the worker or from a cron job without django-q2."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from approvals.tasks import expire_requests
from bcservice import request_context


class Command(BaseCommand):
    help = "Expire overdue approval requests and re-bind those whose policy or scope changed."

    def handle(self, *args: Any, **options: Any) -> None:
        with request_context.bind("cli"):
            result = expire_requests()
        self.stdout.write(
            f"expired {result['expired']}, re-bound {result['refreshed']}"
            + (" (skipped: another sweep is running)" if result["skipped"] else "")
        )
