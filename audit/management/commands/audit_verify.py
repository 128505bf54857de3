"""``manage.py audit_verify``: exit 0 when the chain is intact, 1 naming the first bad sequence.

Also checks the chain against the signed checkpoints exported outside the database (directory,
and S3 when configured): a rewritten table, a restored old backup ("missing tail after seq N") and
forged checkpoints fail too. ``--no-checkpoints`` checks the stored chain alone.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.verification import verify_all
from bcservice import request_context


class Command(BaseCommand):
    help = "Verify the whole audit chain, and against the exported signed checkpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-checkpoints", action="store_true", help="check the stored chain only"
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        with request_context.bind("cli"):
            report = verify_all(use_checkpoints=not options["no_checkpoints"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            if not report.ok:
                raise SystemExit(1)
            return
        chain, checkpoints = report.chain, report.checkpoints
        if report.ok:
            latest = (
                f"; {checkpoints.verified} signed checkpoint copies verified, latest seq "
                f"{checkpoints.latest_seq} at {checkpoints.latest_at}"
                if checkpoints.latest_seq is not None
                else "; no checkpoints yet"
            )
            if options["no_checkpoints"]:
                latest = ""
            self.stdout.write(f"audit chain intact: {chain.events_checked} events checked{latest}")
            return
        if report.missing_tail_after is not None:
            self.stderr.write(
                f"audit chain BROKEN: {chain.reason} (first missing sequence "
                f"{chain.first_bad_seq}; {chain.events_checked} events verified before it)"
            )
        elif not chain.ok:
            self.stderr.write(
                f"audit chain BROKEN at sequence {chain.first_bad_seq}: {chain.reason} "
                f"({chain.events_checked} events verified before it)"
            )
        for problem in checkpoints.problems:
            self.stderr.write(f"audit checkpoints: {problem}")
        raise SystemExit(1)
