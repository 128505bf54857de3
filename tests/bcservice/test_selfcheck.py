"""bc_selfcheck: backup age, own-store replication, audit chain."""

from __future__ import annotations

import json
import os
import time

import psycopg
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


def test_backup_age_ignores_unfinished_and_empty_files_and_takes_base_backups(tmp_path):
    (tmp_path / "bcservice-2.dump.partial").write_text("half")
    (tmp_path / "bcservice-3.dump").write_text("")
    check = selfcheck.backup_age(tmp_path)
    assert not check.ok and "no finished backup" in check.detail
    base = tmp_path / "base-20260101"
    base.mkdir()
    (base / "base.tar").write_text("x")
    assert not selfcheck.backup_age(tmp_path).ok  # no manifest: pg_basebackup did not finish
    (base / "backup_manifest").write_text("{}")
    check = selfcheck.backup_age(tmp_path, max_hours=0.5)
    assert check.ok and "base-20260101" in check.detail and "limit 0.5 h" in check.detail


@pytest.mark.django_db
def test_thresholds_from_settings_and_options(tmp_path, settings, capsys):
    settings.BC_BACKUP_DIR = tmp_path
    settings.BC_SELFCHECK_REQUIRE_STANDBY = False
    dump = tmp_path / "bcservice-1.dump"
    dump.write_text("x")
    old = time.time() - 3 * 3600
    os.utime(dump, (old, old))
    call_command("bc_selfcheck")  # 3 h < 24 h, no standby allowed by the setting
    settings.BC_SELFCHECK_MAX_BACKUP_AGE_HOURS = 2
    with pytest.raises(SystemExit):
        call_command("bc_selfcheck")
    assert "FAIL backup_age" in capsys.readouterr().out
    call_command("bc_selfcheck", "--max-backup-age-hours", "4", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [c["name"] for c in report["checks"]] == [
        "backup_age",
        "store_replication",
        "audit_chain",
    ]


@pytest.mark.django_db
def test_a_broken_audit_chain_fails_the_selfcheck(tmp_path, settings, capsys):
    from audit import services as audit

    settings.BC_BACKUP_DIR = tmp_path
    settings.BC_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    (tmp_path / "bcservice-1.dump").write_text("x")
    for n in range(3):
        audit.record(action="test.event", actor="selfcheck", object_type="t", object_name=str(n))
    call_command("bc_selfcheck", "--no-standby-ok")
    assert "OK   audit_chain: 3 events verified" in capsys.readouterr().out
    _tamper_second_event()
    with pytest.raises(SystemExit) as info:
        call_command("bc_selfcheck", "--no-standby-ok")
    assert info.value.code == 1
    assert "FAIL audit_chain: broken at sequence 2" in capsys.readouterr().out


def _tamper_second_event() -> None:
    """Change a stored event as someone with table access would (triggers out of the way; the
    test's transaction rolls that back)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        cursor.execute("UPDATE audit_auditevent SET object_name = 'forged' WHERE seq = 2")


@pytest.mark.django_db
def test_postgres_store_without_standby_says_so(settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL as the state store")
    check = selfcheck.store_replication()
    assert not check.ok and check.detail.startswith("no standby")
    assert selfcheck.store_replication(require_standby=False).ok


@pytest.mark.integration
def test_store_replication_against_a_real_primary_and_standby(tmp_path_factory):
    from connectors.lab.pg_server import PG_BIN
    from connectors.lab.postgres import PgPair

    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    pair = PgPair(tmp_path_factory.mktemp("h4pg") / "pair", name="selfcheck")
    try:
        pair.up()
        with psycopg.connect(pair.dsn("primary")) as primary:
            check = selfcheck.store_replication(primary)
            assert check.ok, check.detail
            assert "1 of 1 standby(s) streaming" in check.detail and check.value <= 5
            # The threshold is the operator's: a standby that must be exactly current fails.
            assert not selfcheck.store_replication(primary, max_lag=-1).ok
        with psycopg.connect(pair.dsn("standby")) as standby:
            check = selfcheck.store_replication(standby)
            assert not check.ok and "connected to a standby" in check.detail
        pair.inject("standby_down")
        with psycopg.connect(pair.dsn("primary")) as primary:
            check = selfcheck.store_replication(primary)
            assert not check.ok and check.detail.startswith("no standby")
            pair.inject("primary_down")  # the store dies under an open connection
            check = selfcheck.store_replication(primary)
            assert not check.ok and check.detail.startswith("store unreachable")
    finally:
        pair.destroy()
