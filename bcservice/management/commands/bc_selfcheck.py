"""``manage.py bc_selfcheck [--json]``: exit 0 when the service's own DR posture is healthy."""

import json

from django.core.management.base import BaseCommand, CommandParser

from bcservice import request_context, selfcheck


class Command(BaseCommand):
    help = "Report backup age, own-store replication lag and audit chain health."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        with request_context.bind("cli"):
            report = selfcheck.run()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            for check in report.checks:
                self.stdout.write(f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        if not report.ok:
            raise SystemExit(1)
