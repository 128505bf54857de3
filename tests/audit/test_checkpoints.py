"""Checkpoints: signed, exported append-only outside the database, enqueued every N events."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django_q.models import OrmQ, Schedule

from audit import services, tasks
from audit.checkpoint_store import CheckpointConflict, DirectoryStore
from audit.checkpoints import CheckpointRefused, checkpoint_create
from audit.models import AuditCheckpoint, AuditEvent
from audit.signing import (
    load_private_key,
    load_public_keys,
    parse_checkpoint,
    sign_checkpoint,
    signature_problem,
)


def _files(root: Path) -> list[Path]:
    return sorted((root / "checkpoints").glob("checkpoint-*.json"))


@pytest.mark.django_db
def test_checkpoint_signs_the_head_and_exports_a_file(append, signing_keys, audit_storage):
    append(3)
    outcome = checkpoint_create()
    assert outcome.created and outcome.seq == 3
    [path] = _files(audit_storage)
    document = parse_checkpoint(path.read_bytes())
    head = AuditEvent.objects.get(seq=3)
    assert (document["seq"], document["hash"]) == (3, head.hash)
    assert signature_problem(document, load_public_keys(signing_keys[1])) is None
    assert AuditCheckpoint.objects.get(seq=3).document() == document
    # Read-only on disk, and a second run with nothing new writes nothing.
    assert not os.stat(path).st_mode & stat.S_IWUSR
    assert not checkpoint_create().created
    assert len(_files(audit_storage)) == 1


@pytest.mark.django_db
def test_directory_store_never_overwrites(audit_storage, signing_keys):
    store = DirectoryStore(audit_storage / "checkpoints")
    key = load_private_key(signing_keys[0])
    document = sign_checkpoint(key, seq=5, hash="a" * 64, at="2026-01-01T00:00:00.000000+00:00")
    store.put(document)
    assert store.put(dict(document)) == document  # a retried job: same content is fine
    with pytest.raises(CheckpointConflict):
        store.put(sign_checkpoint(key, seq=5, hash="b" * 64, at=document["at"]))
    assert json.loads(_files(audit_storage)[0].read_text())["hash"] == "a" * 64
    assert not list((audit_storage / "checkpoints").glob(".*.tmp"))


@pytest.mark.django_db
def test_checkpoint_refuses_to_sign_a_broken_chain(append, signing_keys, tamper, audit_storage):
    append(3)
    checkpoint_create()
    append(3)
    tamper.execute("UPDATE audit_auditevent SET object_name = 'forged' WHERE seq = 5")
    with pytest.raises(CheckpointRefused, match="seq 5"):
        checkpoint_create()
    assert len(_files(audit_storage)) == 1


@pytest.mark.django_db
def test_checkpoint_refuses_when_the_checkpointed_event_was_rewritten(append, signing_keys, tamper):
    append(3)
    checkpoint_create()
    append(2)
    tamper.rewrite(2, object_name="forged")  # recomputes 2..5, so 3 no longer matches
    with pytest.raises(CheckpointRefused, match="seq 3"):
        checkpoint_create()


@pytest.mark.django_db
def test_checkpoint_refuses_after_a_lost_tail(append, signing_keys, tamper):
    append(4)
    checkpoint_create()
    tamper.execute("DELETE FROM audit_auditevent WHERE seq > 2")
    with pytest.raises(CheckpointRefused, match="missing tail after seq 2"):
        checkpoint_create()


@pytest.mark.django_db
def test_checkpoint_rows_are_append_only(append, signing_keys):
    append(1)
    checkpoint_create()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditCheckpoint.objects.filter(seq=1).update(hash="0" * 64)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditCheckpoint.objects.filter(seq=1).delete()


@pytest.mark.django_db
def test_demo_key_is_created_on_first_run(settings, tmp_path, append):
    # No key configured at all (the demo): the job makes one in var/ (BC_VAR_DIR).
    settings.BC_VAR_DIR = tmp_path / "var"
    settings.BC_AUDIT_SIGNING_KEY_FILE = None
    settings.BC_AUDIT_PUBLIC_KEY_FILE = None
    append(1)
    assert checkpoint_create().created
    private = tmp_path / "var" / "audit-signing-key.pem"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert (tmp_path / "var" / "audit-signing-key.pub.pem").exists()


@pytest.mark.django_db
def test_configured_but_missing_key_is_an_error(append, settings):
    from django.core.exceptions import ImproperlyConfigured

    append(1)
    with pytest.raises(ImproperlyConfigured):
        checkpoint_create()


@pytest.mark.django_db
def test_every_n_events_enqueues_the_job_after_commit(settings, django_capture_on_commit_callbacks):
    settings.BC_AUDIT_CHECKPOINT_EVERY = 3
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for i in range(7):
            services.record(action="test.event", object_id=i)
    assert len(callbacks) == 2  # after events 3 and 6
    queued = [task for task in OrmQ.objects.all() if task.func() == tasks.CHECKPOINT_TASK]
    assert len(queued) == 2


@pytest.mark.django_db
def test_rolled_back_append_enqueues_nothing(settings, django_capture_on_commit_callbacks):
    settings.BC_AUDIT_CHECKPOINT_EVERY = 1
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                services.record(action="test.event")
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert callbacks == []


@pytest.mark.django_db
def test_task_writes_a_checkpoint_and_the_schedule_exists(append, signing_keys):
    schedule = Schedule.objects.get(name=tasks.CHECKPOINT_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        tasks.CHECKPOINT_TASK,
        Schedule.MINUTES,
        -1,
    )
    append(2)
    assert tasks.write_checkpoint()["created"]
    assert AuditCheckpoint.objects.filter(seq=2).exists()


@pytest.mark.django_db
def test_keygen_and_checkpoint_commands(settings, tmp_path, append, capsys):
    private, public = tmp_path / "k" / "a.pem", tmp_path / "k" / "a.pub"
    call_command("audit_keygen", "--private", str(private), "--public", str(public))
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="exists"):
        call_command("audit_keygen", "--private", str(private), "--public", str(public))
    settings.BC_AUDIT_SIGNING_KEY_FILE = str(private)
    settings.BC_AUDIT_PUBLIC_KEY_FILE = str(public)
    append(2)
    call_command("audit_checkpoint")
    assert "checkpoint at seq 2" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_job_that_died_between_export_and_record_is_finished_by_the_next_run(
    append, signing_keys, audit_storage, monkeypatch
):
    # The export is outside the database and cannot roll back: a worker killed after writing
    # the file but before recording it leaves an exported checkpoint the table does not know.
    from audit.verification import verify_all

    append(4)
    real_create = AuditCheckpoint.objects.create

    def die(**kwargs):
        raise DatabaseError("worker lost its connection")

    monkeypatch.setattr(AuditCheckpoint.objects, "create", die)
    with pytest.raises(DatabaseError):
        checkpoint_create()
    [path] = _files(audit_storage)
    exported = parse_checkpoint(path.read_bytes())
    assert not AuditCheckpoint.objects.exists()

    # Until the retry, the chain still verifies against the orphaned export.
    report = verify_all()
    assert report.ok, report.as_dict()
    assert (report.checkpoints.found, report.checkpoints.latest_seq) == (1, 4)

    # The retry signs anew, finds its earlier export, keeps that document and records it.
    monkeypatch.setattr(AuditCheckpoint.objects, "create", real_create)
    outcome = checkpoint_create()
    assert outcome.created and outcome.seq == 4
    assert AuditCheckpoint.objects.get(seq=4).document() == exported
    assert _files(audit_storage) == [path]
    assert verify_all().ok
