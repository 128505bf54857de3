"""Nothing the tests run writes into the checkout's var/ (where the demo keeps its state)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from audit import conf

ROOT = Path(__file__).resolve().parents[2]
SHOW_PATHS = (
    "from django.conf import settings; from audit import conf; "
    "print(conf.checkpoint_dir()); print(conf.signing_key_file()); "
    "print(settings.BC_SNAPSHOT_DIR); print(settings.BC_SECRETS_FILE); print(settings.BC_BACKUP_DIR)"
)


def test_this_process_keeps_its_state_outside_the_checkout():
    assert not Path(settings.BC_VAR_DIR).is_relative_to(ROOT)
    assert not conf.signing_key_file().is_relative_to(ROOT)
    assert not conf.public_key_file().is_relative_to(ROOT)


def test_processes_started_by_tests_keep_their_state_outside_the_checkout():
    # A worker or web server a test starts inherits the environment; its default paths must
    # follow BC_VAR_DIR, not the checkout.
    env = {k: v for k, v in os.environ.items() if k not in ("BC_SNAPSHOT_DIR", "BC_SECRETS_FILE")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW_PATHS],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "bcservice.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    paths = [Path(line) for line in result.stdout.split("\n") if line.startswith("/")]
    assert len(paths) == 5, result.stdout
    for path in paths:
        assert path.is_relative_to(os.environ["BC_VAR_DIR"]), path
