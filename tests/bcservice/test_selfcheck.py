"""bc_selfcheck: backup age, own-store replication, audit chain."""

from __future__ import annotations

import os
import time

import pytest
from django.core.management import call_command

from bcservice import selfcheck


def test_backup_age_rules(tmp_path):
    assert not selfcheck.backup_age(tmp_path).ok
    dump = tmp_path / "bcservice-1.dump"
    dump.write_text("x")
    assert selfcheck.backup_age(tmp_path).ok
    old = time.time() - 25 * 3600
    os.utime(dump, (old, old))
    check = selfcheck.backup_age(tmp_path)
    assert not check.ok and "25.0 h old" in check.detail


@pytest.mark.django_db
def test_selfcheck_command_fails_without_backup_and_passes_with_one(tmp_path, settings, capsys):
    settings.BC_BACKUP_DIR = tmp_path
    with pytest.raises(SystemExit) as info:
        call_command("bc_selfcheck")
    assert info.value.code == 1
    assert "FAIL backup_age" in capsys.readouterr().out
    (tmp_path / "bcservice-1.dump").write_text("x")
    from django.db import connection

    if connection.vendor == "postgresql":
        # The throw-away test store has no standby: the command must say so and fail.
        with pytest.raises(SystemExit):
            call_command("bc_selfcheck")
        assert "no streaming standby" in capsys.readouterr().out
    else:
        call_command("bc_selfcheck")
        assert "OK   audit_chain" in capsys.readouterr().out
