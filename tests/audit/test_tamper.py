"""Tampering, each case found and named: by the chain itself, or by the signed checkpoints.

A changed field, a deleted row and swapped rows break the stored chain. A careful forger who
recomputes every later hash, or a restore of an old backup, leaves a chain that verifies on its
own: the exported checkpoints catch both. A checkpoint with a bad signature is reported as forged.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from audit.checkpoints import checkpoint_create
from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.signing import generate_key_pair, load_private_key, sign_checkpoint
from audit.verification import verify_all


def _audit_verify(capsys) -> tuple[int, str]:
    try:
        call_command("audit_verify")
    except SystemExit as exc:
        return int(exc.code), capsys.readouterr().err
    return 0, capsys.readouterr().out


@pytest.mark.django_db
def test_intact_chain_with_checkpoints_verifies(append, signing_keys, capsys):
    append(3)
    checkpoint_create()
    append(2)
    checkpoint_create()
    report = verify_all()
    assert report.ok and report.chain.events_checked == 5
    assert report.checkpoints.latest_seq == 5 and report.checkpoints.verified == 4  # dir + db
    code, out = _audit_verify(capsys)
    assert code == 0 and "5 events checked" in out and "latest seq 5" in out


@pytest.mark.django_db
def test_changed_field_is_named(append, signing_keys, tamper, capsys):
    append(5)
    checkpoint_create()
    tamper.execute("UPDATE audit_auditevent SET after = '{\"i\": 99}' WHERE seq = 4")
    report = verify_all()
    assert (report.ok, report.chain.first_bad_seq) == (False, 4)
    assert "content does not match" in report.chain.reason
    code, err = _audit_verify(capsys)
    assert code == 1 and "sequence 4" in err


@pytest.mark.django_db
def test_deleted_row_is_named(append, tamper, capsys):
    append(5)
    tamper.execute("DELETE FROM audit_auditevent WHERE seq = 3")
    assert verify_all().chain.first_bad_seq == 3
    code, err = _audit_verify(capsys)
    assert code == 1 and "sequence 3 is missing" in err


@pytest.mark.django_db
def test_swapped_rows_are_named(append, tamper):
    append(5)
    two, three = (AuditEvent.objects.filter(seq=s).values().get() for s in (2, 3))
    tamper.execute("UPDATE audit_auditevent SET seq = -2 WHERE seq = 2")
    tamper.execute("UPDATE audit_auditevent SET seq = 2 WHERE seq = 3")
    tamper.execute("UPDATE audit_auditevent SET seq = 3 WHERE seq = -2")
    assert AuditEvent.objects.get(seq=2).hash == three["hash"]
    assert AuditEvent.objects.get(seq=3).hash == two["hash"]
    result = verify_all().chain
    assert (result.ok, result.first_bad_seq) == (False, 2)


@pytest.mark.django_db
def test_truncated_tail_is_caught_by_the_checkpoint(append, signing_keys, tamper, capsys):
    append(6)
    checkpoint_create()
    tamper.execute("DELETE FROM audit_auditevent WHERE seq > 4")
    assert verify_chain().ok  # what is left still links up
    report = verify_all()
    assert (report.ok, report.missing_tail_after, report.chain.first_bad_seq) == (False, 4, 5)
    code, err = _audit_verify(capsys)
    assert code == 1 and "missing tail after seq 4" in err


@pytest.mark.django_db
def test_restored_old_backup_is_caught_by_the_exported_copy(append, signing_keys, tamper, capsys):
    # The database goes back in time as a whole, checkpoint table included; the export stays.
    append(3)
    checkpoint_create()
    append(3)
    checkpoint_create()
    tamper.execute("DELETE FROM audit_auditevent WHERE seq > 3")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER audit_checkpoint_no_delete")
        cursor.execute("DELETE FROM audit_auditcheckpoint WHERE seq > 3")
    report = verify_all()
    assert report.missing_tail_after == 3 and "seq 6" in report.chain.reason
    assert _audit_verify(capsys)[0] == 1


@pytest.mark.django_db
def test_whole_table_rewrite_with_recomputed_hashes_is_caught(append, signing_keys, tamper, capsys):
    append(3)
    checkpoint_create()
    append(3)
    checkpoint_create()
    tamper.rewrite(5, object_name="forged")
    assert verify_chain().ok  # the forger recomputed every hash: the chain alone is fooled
    report = verify_all()
    assert (report.ok, report.chain.first_bad_seq) == (False, 6)
    assert "signed checkpoint" in report.chain.reason
    code, err = _audit_verify(capsys)
    assert code == 1 and "sequence 6" in err


@pytest.mark.django_db
def test_rewrite_below_an_old_checkpoint_names_that_checkpoint(append, signing_keys, tamper):
    append(3)
    checkpoint_create()
    append(3)
    checkpoint_create()
    tamper.rewrite(2, object_name="forged")
    assert verify_all().chain.first_bad_seq == 3


@pytest.mark.django_db
def test_forged_checkpoint_signature_is_reported(append, signing_keys, audit_storage, capsys):
    append(3)
    checkpoint_create()
    path = next((audit_storage / "checkpoints").glob("*.json"))
    forged = path.read_text().replace('"seq": 3', '"seq": 30')
    (audit_storage / "checkpoints" / "checkpoint-000000000000030.json").write_text(forged)
    report = verify_all()
    assert not report.ok and report.chain.ok
    [problem] = report.checkpoints.problems
    assert "checkpoint seq 30" in problem and "forged" in problem
    code, err = _audit_verify(capsys)
    assert code == 1 and "forged" in err


@pytest.mark.django_db
def test_checkpoint_signed_with_another_key_is_reported(append, signing_keys, tmp_path):
    append(3)
    generate_key_pair(tmp_path / "evil.pem", tmp_path / "evil.pub")
    evil = load_private_key(tmp_path / "evil.pem")
    head = AuditEvent.objects.get(seq=3)
    document = sign_checkpoint(evil, seq=3, hash=head.hash, at="2026-01-01T00:00:00.000000+00:00")
    from audit.checkpoints import stores

    stores()[0].put(document)
    report = verify_all()
    assert not report.ok and "unknown key" in report.checkpoints.problems[0]


@pytest.mark.django_db
def test_deleted_export_is_reported(append, signing_keys, audit_storage):
    append(2)
    checkpoint_create()
    for path in (audit_storage / "checkpoints").glob("*.json"):
        path.chmod(0o644)
        path.unlink()
    report = verify_all()
    assert not report.ok and "missing from every export" in report.checkpoints.problems[0]


@pytest.mark.django_db
def test_without_checkpoints_option_checks_the_chain_only(append, capsys):
    append(2)
    call_command("audit_verify", "--no-checkpoints")
    assert "2 events checked" in capsys.readouterr().out
