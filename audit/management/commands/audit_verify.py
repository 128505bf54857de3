"""``manage.py audit_verify``: exit 0 when the chain is intact, 1 naming the first bad sequence."""

from django.core.management.base import BaseCommand

from audit.selectors import verify_chain
from bcservice import request_context


class Command(BaseCommand):
    help = "Verify the whole audit chain."

    def handle(self, *args, **options) -> None:
        with request_context.bind("cli"):
            result = verify_chain()
        if result.ok:
            self.stdout.write(f"audit chain intact: {result.events_checked} events checked")
            return
        self.stderr.write(
            f"audit chain BROKEN at sequence {result.first_bad_seq}: {result.reason} "
            f"({result.events_checked} events verified before it)"
        )
        raise SystemExit(1)
