"""``manage.py collect [--resource NAME] [--once]``: run collection now and print the statuses.

``--once``: one collection of every enabled resource (or of ``--resource``), due or not.
Without ``--once`` it keeps going until interrupted: the sweep (what is due, looked at every
second; it prints the statuses that change), or ``--resource`` again after each of its
collection intervals.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bcservice import request_context
from connectors.collection import CollectionBusy, collect_resource
from connectors.tasks import Sweeper
from inventory.models import Resource, ResourceStatus
from inventory.status_services import current_evaluation


class Command(BaseCommand):
    help = "Collect monitoring observations now and print the resulting statuses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--resource", metavar="NAME", help="collect only this resource")
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, resource: str | None = None, once: bool = False, **opts: Any):
        with request_context.bind("cli"):
            try:
                if resource:
                    self._one(resource, once)
                else:
                    self._sweep(once)
            except KeyboardInterrupt:
                self.stdout.write("stopped")

    def _one(self, name: str, once: bool) -> None:
        found = Resource.objects.filter(name=name).first()
        if found is None:
            raise CommandError(f"unknown resource {name!r}")
        while True:
            try:
                status = collect_resource(found.pk)
            except CollectionBusy as exc:
                raise CommandError(str(exc)) from None
            self._table([status])
            if once:
                return
            time.sleep(found.interval_seconds)

    def _sweep(self, once: bool) -> None:
        if once:
            with Sweeper(keep_statuses=True) as sweeper:
                report = sweeper.run_once(everything=True)
            self._table(list(report.statuses.values()))
            self.stdout.write(f"collected {report.collected}, status changes {report.changed}")
            return

        # Looping, print only what changed: a full table every batch would bury the news.
        def changed(statuses: dict[int, ResourceStatus]) -> None:
            news = [s for s in statuses.values() if getattr(s, "status_changed", False)]
            if news:
                self._table(news)

        self.stdout.write("collecting what is due every second; status changes below (Ctrl-C)")
        with Sweeper(on_applied=changed) as sweeper:
            sweeper.run_until(float("inf"))

    def _table(self, statuses: list[ResourceStatus]) -> None:
        header = f"{'NAME':<30} {'STATE':<7} {'VISIBILITY':<10} {'LAG':>10}  REASONS"
        self.stdout.write(header)
        for status in sorted(statuses, key=lambda s: s.resource.name):
            evaluation = current_evaluation(status.resource, status)
            lag = "-" if status.lag_seconds is None else f"{status.lag_seconds:.1f}s"
            reasons = "; ".join(f"{r.code}: {r.message}" for r in evaluation.reasons) or "-"
            self.stdout.write(
                f"{status.resource.name:<30} {evaluation.state:<7} {evaluation.visibility:<10} "
                f"{lag:>10}  {reasons}"
            )
        self.stdout.flush()
