"""``manage.py lab up|down|status|inject TARGET FAULT|heal [TARGET]``: the local lab.

The lab is a real PostgreSQL primary/standby pair plus protocol-level simulators for MongoDB,
SQL Server and Snowflake, hosted by a detached daemon (``connectors.lab.daemon``). Its directory
is ``settings.BC_LAB_DIR``; credentials are written to ``settings.BC_SECRETS_FILE``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from connectors.lab.control import COMMON_FAULTS, LabControl, LabError
from connectors.lab.daemon import TARGETS

ACTIONS = ("up", "down", "status", "inject", "heal", "commands")


class Command(BaseCommand):
    help = (
        "Local lab. up: start (idempotent); down: stop; status: state and faults per target; "
        f"inject TARGET FAULT (targets: {', '.join(TARGETS)}; faults: {', '.join(COMMON_FAULTS)}, "
        "mongodb also: recovering); heal [TARGET]: clear faults; commands TARGET: what a "
        "simulator received."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=ACTIONS)
        # Not "args": Django pops that name from the options.
        parser.add_argument("operands", nargs="*", metavar="TARGET [FAULT]")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        control = LabControl(
            Path(settings.BC_LAB_DIR), Path(settings.BC_SECRETS_FILE), Path(settings.BASE_DIR)
        )
        action, rest = options["action"], list(options["operands"])
        try:
            getattr(self, f"_{action}")(control, rest, options["json"])
        except LabError as exc:
            raise CommandError(str(exc)) from None

    def _up(self, control: LabControl, rest: list[str], as_json: bool) -> None:
        self._no_args("up", rest)
        lab, warnings = control.up()
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")
        if as_json:
            self.stdout.write(json.dumps(lab, indent=2))
            return
        for name, target in lab["targets"].items():
            self.stdout.write(f"{name:<10} {json.dumps(target['connection'])}")
        daemon = lab["daemon"]
        self.stdout.write(
            f"lab up in {control.lab_dir} (daemon pid {daemon['pid']}, control port "
            f"{daemon['control_port']}); credentials in {control.secrets_file}"
        )

    def _down(self, control: LabControl, rest: list[str], as_json: bool) -> None:
        self._no_args("down", rest)
        for line in control.down() or ["nothing was running"]:
            self.stdout.write(line)

    def _status(self, control: LabControl, rest: list[str], as_json: bool) -> None:
        self._no_args("status", rest)
        status = control.status()
        if as_json:
            self.stdout.write(json.dumps(status, indent=2, default=str))
            return
        for name, state in status["targets"].items():
            self.stdout.write(self._line(name, state))

    @staticmethod
    def _line(name: str, state: dict[str, Any]) -> str:
        if not state.get("available", True):
            return f"{name:<10} unavailable: {state.get('error')}"
        faults = ", ".join(state.get("faults") or []) or "none"
        shown = {
            k: v
            for k, v in state.items()
            if k not in ("available", "faults", "supported_faults", "platform", "members")
            and not isinstance(v, dict | list)
        }
        nodes = state.get("nodes")
        if isinstance(nodes, dict):  # the PostgreSQL pair: one word per node
            shown["nodes"] = ",".join(
                f"{label}:{'up' if n.get('running') else 'down'}"
                + ("(frozen)" if n.get("frozen") else "")
                + ("(recovery)" if n.get("in_recovery") else "")
                for label, n in nodes.items()
            )
        detail = " ".join(f"{k}={v}" for k, v in shown.items())
        return f"{name:<10} faults: {faults:<20} {detail}".rstrip()

    def _inject(self, control: LabControl, rest: list[str], as_json: bool) -> None:
        if len(rest) != 2:
            raise CommandError("usage: manage.py lab inject TARGET FAULT")
        state = control.inject(rest[0], rest[1])
        self.stdout.write(self._line(rest[0], state))

    def _heal(self, control: LabControl, rest: list[str], as_json: bool) -> None:
        if len(rest) > 1:
            raise CommandError("usage: manage.py lab heal [TARGET]")
        status = control.status()["targets"]
        names = rest or [n for n, s in status.items() if s.get("available", True)]
        for name in names:
            self.stdout.write(self._line(name, control.inject(name, "heal")))

    def _commands(self, control: LabControl, rest: list[str], as_json: bool) -> None:
        if len(rest) != 1 or rest[0] not in TARGETS:
            raise CommandError(f"usage: manage.py lab commands TARGET ({', '.join(TARGETS)})")
        self.stdout.write(json.dumps(control.commands(rest[0]), indent=2, default=str))

    @staticmethod
    def _no_args(action: str, rest: list[str]) -> None:
        if rest:
            raise CommandError(f"`lab {action}` takes no arguments (got {' '.join(rest)})")
