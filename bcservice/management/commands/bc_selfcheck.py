"""``manage.py bc_selfcheck [--json] [--max-backup-age-hours H] [--max-lag-seconds S]
[--no-standby-ok]``: exit 0 when the service's own DR posture is healthy, 1 when a check fails.

Checks: age of the newest finished backup, replication lag of the service's own PostgreSQL store,
and the audit chain (stored chain and exported signed checkpoints). Defaults come from settings
(see bcservice/selfcheck.py); the options override them for one run.
"""

import json

from django.core.management.base import BaseCommand, CommandParser

from bcservice import request_context, selfcheck


class Command(BaseCommand):
    help = "Report backup age, own-store replication lag and audit chain health."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--max-backup-age-hours", type=float, help="fail when the newest backup is older"
        )
        parser.add_argument(
            "--max-lag-seconds", type=float, help="fail when a standby replays later than this"
        )
        parser.add_argument(
            "--no-standby-ok",
            action="store_true",
            help="a store without a streaming standby passes (single-node deployments)",
        )

    def handle(self, *args, **options) -> None:
        thresholds = selfcheck.Thresholds.from_settings(
            max_backup_age_hours=options["max_backup_age_hours"],
            max_store_lag_seconds=options["max_lag_seconds"],
            require_standby=False if options["no_standby_ok"] else None,
        )
        with request_context.bind("cli"):
            report = selfcheck.run(thresholds)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            for check in report.checks:
                self.stdout.write(f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        if not report.ok:
            raise SystemExit(1)
