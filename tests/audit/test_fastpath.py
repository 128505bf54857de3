"""The fast verification path agrees with the reference encoding, including on hostile values."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from audit import pgwalk, selectors, services
from audit.chain import (
    HASHED_FIELDS,
    ROW_FIELDS,
    canonical,
    canonical_row,
    event_hash,
    fill_template,
    hash_template,
)
from audit.models import AuditEvent

HOSTILE_TEXT = [
    "",
    "plain",
    'quote " and \\ backslash',
    "new\nline\r\ttab\b\f",
    "\x00\x01\x1f\x7f control",
    "unicode é ü 中文 🎉 \u2028\u2029",
    '","before":{"a":1},"x":"',
    "=cmd|' /C calc'!A0",
]
HOSTILE_JSON = [
    None,
    {},
    [],
    {"b": 1, "a": [1, 2.5, None, True, False], "é": {"z": "\n", "y": "\u0001"}},
    {"big": 10**30, "float": 0.1, "neg": -1.5e-7, "one": 1.0, "text": HOSTILE_TEXT},
    "just a string",
    3,
]


def _event(rng: random.Random, seq: int) -> dict:
    return {
        "seq": seq,
        "at": "2026-11-23T07:22:00.123456+00:00",
        "actor_id": rng.choice([None, 0, 7, 2**62]),
        "actor_name": rng.choice(HOSTILE_TEXT),
        "action": rng.choice(HOSTILE_TEXT),
        "object_type": rng.choice(HOSTILE_TEXT),
        "object_id": rng.choice(HOSTILE_TEXT),
        "object_name": rng.choice(HOSTILE_TEXT),
        "before": rng.choice(HOSTILE_JSON),
        "after": rng.choice(HOSTILE_JSON),
        "request_id": rng.choice(HOSTILE_TEXT),
        "context": rng.choice(HOSTILE_TEXT),
        "prev_hash": rng.choice(["0" * 64, "ab" * 32, ""]),
    }


def test_canonical_row_equals_canonical_on_hostile_values():
    rng = random.Random(6)
    for seq in range(1, 2000):
        event = _event(rng, seq)
        row = tuple(event[name] for name in HASHED_FIELDS)
        assert canonical_row(row) == canonical(event)


@pytest.mark.parametrize(
    "odd",
    [{"seq": "5"}, {"seq": True}, {"actor_id": "7"}, {"actor_name": None}, {"at": 5}],
)
def test_canonical_row_falls_back_on_unexpected_types(odd):
    event = {**_event(random.Random(1), 5), **odd}
    row = tuple(event[name] for name in HASHED_FIELDS)
    assert canonical_row(row) == canonical(event)


@pytest.mark.django_db
def test_hostile_events_verify_on_this_database():
    rng = random.Random(7)
    for _ in range(60):
        event = _event(rng, 0)
        services.record(
            action=event["action"] or "x",
            object_type=event["object_type"][:100],
            object_id=event["object_id"],
            object_name=event["object_name"],
            actor=event["actor_name"] or None,
            before=event["before"] if isinstance(event["before"], dict) else None,
            after=event["after"] if isinstance(event["after"], dict) else None,
        )
    result = selectors.verify_chain()
    assert result.ok and result.events_checked == 60, result


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [1e20, 1e23, -2.5e30, 1e16, 1.2345678901234568e17, 1.5e-7, 0.1, 1.0, -0.0, float("nan")],
)
def test_numbers_verify_after_the_database_round_trip(value):
    # jsonb prints 1e20 as an integer and has no -0.0; the service stores what comes back.
    services.record(action="number", after={"v": value, "nested": [value]})
    assert selectors.verify_chain().ok


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_sql_rendering_equals_the_reference_encoding():
    rng = random.Random(8)
    for _ in range(80):
        event = _event(rng, 0)
        services.record(
            action=event["action"][:100] or "x",
            object_id=event["object_id"],
            object_name=event["object_name"],
            actor=event["actor_name"] or None,
            before=event["before"] if isinstance(event["before"], dict) else None,
            after=event["after"] if isinstance(event["after"], dict) else None,
        )
    expected = {}
    for row in AuditEvent.objects.order_by("seq").values_list(*ROW_FIELDS):
        event = dict(zip(ROW_FIELDS, row))
        from audit.chain import format_time

        event["at"] = format_time(event["at"])
        expected[event["seq"]] = canonical(event)
        assert event_hash(event) == event["hash"]
    with connection.cursor() as cursor:
        links = list(pgwalk.iter_links(cursor, 0, 10**9, batch=7))
    assert [link[0] for link in links] == sorted(expected)
    for seq, _prev, _hash, content in links:
        assert content == expected[seq]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bad_seq", [None, 1, 17, 18, 40])
def test_parallel_walk_names_the_same_first_bad_seq(settings, monkeypatch, bad_seq):
    monkeypatch.setattr(selectors, "PARALLEL_MIN_EVENTS", 1)
    settings.BC_AUDIT_VERIFY_WORKERS = 3  # ranges 1-14, 15-28, 29-40
    for i in range(40):
        services.record(action="p.event", object_id=i, after={"i": i})
    if bad_seq:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            try:
                cursor.execute(
                    "UPDATE audit_auditevent SET object_name = 'forged' WHERE seq = %s", [bad_seq]
                )
            finally:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    parallel = selectors.verify_chain()
    settings.BC_AUDIT_VERIFY_WORKERS = 1
    single = selectors.verify_chain()
    assert parallel == single
    assert parallel.first_bad_seq == bad_seq
    assert parallel.events_checked == (40 if bad_seq is None else bad_seq - 1)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_parallel_walk_finds_a_broken_link_at_a_range_boundary(settings, monkeypatch):
    monkeypatch.setattr(selectors, "PARALLEL_MIN_EVENTS", 1)
    settings.BC_AUDIT_VERIFY_WORKERS = 2  # ranges 1-10, 11-20
    for i in range(20):
        services.record(action="p.event", object_id=i)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            cursor.execute("DELETE FROM audit_auditevent WHERE seq = 10")
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    result = selectors.verify_chain()
    assert (result.ok, result.first_bad_seq, result.events_checked) == (False, 10, 9)


@pytest.mark.postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("cache_size", [1, 3, 16384])
def test_json_cache_never_changes_the_result(monkeypatch, tamper, cache_size):
    monkeypatch.setattr(pgwalk, "CACHE_SIZE", cache_size)
    for i in range(30):
        services.record(
            action="c.event", before={"state": "green"}, after={"state": ["a", "b"][i % 2]}
        )
    assert selectors.verify_chain().ok
    tamper.execute('UPDATE audit_auditevent SET after = \'{"state": "b"}\' WHERE seq = 21')
    assert selectors.verify_chain().first_bad_seq == 21


def test_hash_template_joins_back_to_the_reference_encoding():
    # audit_append() (PostgreSQL) hashes these pieces joined around the values it reads under the
    # lock; fill_template is that join in Python.
    rng = random.Random(9)
    for seq in range(1, 2000):
        event = _event(rng, seq)
        at, prev_hash = f"2026-11-23T07:22:{seq % 60:02d}.{seq:06d}+00:00", f"{seq:064x}"
        pieces = hash_template({**event, "seq": 0, "at": "", "prev_hash": ""})
        expected = canonical({**event, "at": at, "prev_hash": prev_hash})
        assert fill_template(pieces, at, prev_hash, seq) == expected


def test_hash_template_is_not_fooled_by_content_that_looks_like_a_marker():
    event = _event(random.Random(3), 1)
    event.update(action='"at:', object_name='"seq:"', context='prev_hash:"}')
    pieces = hash_template(event)
    assert fill_template(pieces, "T", "P", 42) == canonical(
        {**event, "at": "T", "prev_hash": "P", "seq": 42}
    )


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_record_returns_the_row_the_database_linked():
    # On PostgreSQL the sequence number, time and hashes are made by audit_append() in the
    # server; the returned event must be exactly the stored row, and its hash must verify.
    from audit.chain import format_time

    first = services.record(action="one", after={"é": "\n"})
    second = services.record(action="two", before={"a": [1, None]})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "0" * 64 and second.prev_hash == first.hash
    assert first.at <= second.at
    for event in (first, second):
        stored = AuditEvent.objects.get(seq=event.seq)
        assert (stored.at, stored.hash, stored.prev_hash) == (event.at, event.hash, event.prev_hash)
        fields = {name: getattr(event, name) for name in ROW_FIELDS}
        assert event_hash({**fields, "at": format_time(event.at)}) == event.hash


@pytest.mark.postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("special", ['"', "\\", "\n", "\x1f", "\x01"])
def test_rows_needing_one_escape_take_the_escaping_path(special):
    # pgwalk quotes a row's strings as they are unless one of them holds something JSON escapes;
    # one such character in any one field must switch the whole row to to_json.
    fields = ("action", "object_type", "object_id", "object_name", "context")
    for name in fields:
        values = {field: f"plain-{field}" for field in fields}
        values[name] = f"x{special}y"
        services.record(**values, actor=f"user{special}" if name == "action" else "user")
    from audit.chain import format_time

    expected = {}
    for row in AuditEvent.objects.order_by("seq").values_list(*ROW_FIELDS):
        event = dict(zip(ROW_FIELDS, row))
        event["at"] = format_time(event["at"])
        expected[event["seq"]] = canonical(event)
    with connection.cursor() as cursor:
        links = list(pgwalk.iter_links(cursor, 0, 10**9))
    assert len(links) == len(fields)
    for seq, _prev, _hash, content in links:
        assert content == expected[seq]
    assert selectors.verify_chain().ok
