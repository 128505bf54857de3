"""``manage.py bc_breakglass NAME [--off]``: flag a local account for break-glass password login.

With ``BC_LOCAL_LOGIN=breakglass`` only flagged accounts may log in with a password; this is the
way to prepare (or retire) one from a shell when nobody can reach the admin.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bcservice import request_context
from bcservice.accounts.services import identity_set_breakglass


class Command(BaseCommand):
    help = "Flag (or with --off, unflag) a local account as a break-glass account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--off", action="store_true", help="remove the flag")

    def handle(self, *args, **options) -> None:
        name = options["name"].strip()
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"no user named {name!r}; create it with bc_user first")
        with request_context.bind("cli"):
            try:
                identity_set_breakglass(actor="cli", user=user, breakglass=not options["off"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        state = "off" if options["off"] else "on"
        self.stdout.write(f"break-glass {state} for {name}")
