"""``manage.py audit_keygen``: create the Ed25519 key pair that signs audit checkpoints.

The private key (0600) belongs on the worker host only; give the web hosts and auditors the
public key. Existing files are never overwritten: to rotate, write the new pair elsewhere and
append the new public key to the public key file (checkpoints name the key that signed them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import conf
from audit.signing import generate_key_pair


class Command(BaseCommand):
    help = "Create the audit checkpoint signing key pair (private key 0600)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--private", help="private key path (default: the configured one)")
        parser.add_argument("--public", help="public key path (default: the configured one)")

    def handle(self, *args: Any, **options: Any) -> None:
        private = Path(options["private"] or conf.signing_key_file())
        public = Path(options["public"] or conf.public_key_file())
        if private.exists() or public.exists():
            raise CommandError(f"{private if private.exists() else public} exists; not replacing")
        key_id = generate_key_pair(private, public)
        self.stdout.write(f"key {key_id}: private {private} (0600), public {public}")
