"""The audit chain: appends link, the database refuses changes, verification finds tampering."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from audit import services
from audit.chain import GENESIS_HASH
from audit.models import AuditEvent
from audit.selectors import verify_chain


def _append(n: int, prefix: str = "test") -> None:
    for i in range(n):
        services.record(action=f"{prefix}.event", object_type="x", object_id=i, after={"i": i})


@pytest.mark.django_db
def test_appends_form_one_chain():
    _append(3)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert verify_chain().ok
    assert verify_chain().events_checked == 3


@pytest.mark.django_db
def test_record_keeps_context_and_actor(make_user):
    from bcservice import request_context

    user = make_user("admin", username="carol")
    with request_context.bind("worker", "req-123"):
        event = services.record(action="thing.done", actor=user, object_name="thing")
    assert (event.actor_name, event.actor_id) == ("carol", user.pk)
    assert (event.context, event.request_id) == ("worker", "req-123")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"]
)
def test_database_refuses_update_and_delete(statement):
    _append(2)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_orm_update_and_delete_refused():
    _append(1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(action="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=1).delete()


@pytest.mark.django_db
def test_altered_row_is_detected_by_audit_verify(capsys):
    _append(5)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            cursor.execute("UPDATE audit_auditevent SET object_name = 'forged' WHERE seq = 3")
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER audit_event_no_update")
            cursor.execute("UPDATE audit_auditevent SET object_name = 'forged' WHERE seq = 3")
    result = verify_chain()
    assert (result.ok, result.first_bad_seq, result.events_checked) == (False, 3, 2)
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "sequence 3" in capsys.readouterr().err


@pytest.mark.django_db
def test_deleted_row_is_detected():
    _append(4)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER audit_event_no_delete")
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 2)


@pytest.mark.django_db
def test_audit_verify_command_passes_on_intact_chain(capsys):
    _append(2)
    call_command("audit_verify")
    assert "2 events checked" in capsys.readouterr().out


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_threads_keep_one_chain():
    threads_n, per_thread = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    services.record(action="concurrent.event", object_id=f"{n}-{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert AuditEvent.objects.count() == threads_n * per_thread
    result = verify_chain()
    assert result.ok and result.events_checked == threads_n * per_thread
