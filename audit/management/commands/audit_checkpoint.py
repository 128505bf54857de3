"""``manage.py audit_checkpoint``: sign and export a checkpoint of the chain head now.

Runs what the scheduled worker job runs; use it where the private key lives (the worker host).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint_store import CheckpointConflict, StoreError
from audit.checkpoints import CheckpointRefused, checkpoint_create
from bcservice import request_context


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chain head to every configured store."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with request_context.bind("cli"):
                outcome = checkpoint_create()
        except (CheckpointRefused, CheckpointConflict, StoreError) as exc:
            raise CommandError(str(exc)) from exc
        if outcome.created:
            self.stdout.write(
                f"checkpoint at seq {outcome.seq} written to {', '.join(outcome.exported_to)}"
            )
        else:
            self.stdout.write(f"no checkpoint written: {outcome.detail}")
