"""``manage.py cmdb_sync FILE|URL [--dry-run] [--create] [--format csv|json]``.

Syncs ownership (owner, environment, tier) from a CMDB export; see docs/cmdb.md. Exit status: 0
applied (or nothing to do, or a clean dry run), 1 bad rows (nothing applied), 2 the export could
not be read.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bcservice import request_context
from inventory import cmdb

ACTOR = "cmdb_sync"  # the audit log's actor for changes made by this command


class Command(BaseCommand):
    help = "Sync resource ownership (owner, environment, tier) from a CMDB export (CSV or JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="a local file or an http(s) URL")
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would change; change nothing"
        )
        parser.add_argument(
            "--create",
            action="store_true",
            help="create resources that are not in the inventory yet (needs platform, "
            "primary_site, dr_site and connection in the file)",
        )
        parser.add_argument("--format", choices=["csv", "json"], help="default: guessed")

    def handle(self, *args: Any, **options: Any) -> None:
        with request_context.bind("cli"):
            try:
                source = cmdb.read_source(options["source"], fmt=options["format"])
            except cmdb.CmdbError as exc:
                raise CommandError(str(exc), returncode=2) from exc
            self.stdout.write(f"CMDB export {source.label} ({source.fmt}, sha256 {source.sha256})")
            if options["dry_run"]:
                plan = cmdb.preview(source, create=options["create"])
                self._report(plan)
                if not plan.ok:
                    raise CommandError(f"{len(plan.errors)} bad row(s)", returncode=1)
                self.stdout.write("Dry run: nothing was changed.")
                return
            try:
                plan = cmdb.apply(source, actor=ACTOR, create=options["create"])
            except cmdb.PlanRejected as exc:
                self._report(exc.plan)
                raise CommandError(str(exc), returncode=1) from exc
        self._report(plan)
        self.stdout.write(
            self.style.SUCCESS(
                f"Applied: {len(plan.changes)} updated, {len(plan.creates)} created."
            )
        )

    def _report(self, plan: cmdb.Plan) -> None:
        for line in plan.report_lines():
            stream = self.stderr if line.startswith("ERROR") else self.stdout
            stream.write(line)
