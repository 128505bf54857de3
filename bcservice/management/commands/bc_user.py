"""``manage.py bc_user NAME --roles r1,r2 [--password P] [--token]``."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bcservice import request_context, services
from bcservice.roles import parse_roles


class Command(BaseCommand):
    help = "Create or update a local user with the given roles; --token prints an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--roles", required=True, help="comma-separated role names")
        parser.add_argument("--password", default=None)
        parser.add_argument("--token", action="store_true", help="print a new API token last")

    def handle(self, *args, **options) -> None:
        name = options["name"].strip()
        if not name or len(name) > 150:
            raise CommandError("NAME must be 1 to 150 characters")
        try:
            roles = parse_roles(options["roles"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not roles:
            raise CommandError("--roles needs at least one role")
        with request_context.bind("cli"):
            user, created = services.user_set_roles(
                actor="cli", username=name, roles=roles, password=options["password"]
            )
            verb = "created" if created else "updated"
            self.stdout.write(f"user {name} {verb} with roles {', '.join(roles)}")
            if options["token"]:
                self.stdout.write(services.user_rotate_token(actor="cli", user=user))
