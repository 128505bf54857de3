"""Recurrence and time-zone rules of request schedules (approvals/schedules.py): pure, no database.

The expected instants are written out in UTC by hand from the published DST dates:
Europe/London 2025 springs forward on 30 March at 01:00 GMT and falls back on 26 October at
02:00 BST; America/New_York springs forward on 9 March at 02:00 EST and falls back on
2 November at 02:00 EDT.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from approvals import schedules as r

BEFORE = datetime(2000, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CASES = [
    (
        "weekly Saturday 02:00 London across spring-forward",
        r.Rule(r.WEEKLY, date(2025, 3, 15), time(2, 0), "Europe/London", weekdays=("SA",)),
        [utc(2025, 3, 15, 2), utc(2025, 3, 22, 2), utc(2025, 3, 29, 2), utc(2025, 4, 5, 1)],
    ),
    (
        "weekly Saturday 02:00 London across fall-back",
        r.Rule(r.WEEKLY, date(2025, 10, 18), time(2, 0), "Europe/London", weekdays=("SA",)),
        [utc(2025, 10, 18, 1), utc(2025, 10, 25, 1), utc(2025, 11, 1, 2)],
    ),
    (
        "daily 01:30 London: the gap day moves to 02:00 BST",
        r.Rule(r.DAILY, date(2025, 3, 29), time(1, 30), "Europe/London"),
        [utc(2025, 3, 29, 1, 30), utc(2025, 3, 30, 1, 0), utc(2025, 3, 31, 0, 30)],
    ),
    (
        "daily 01:30 London: the overlap day takes the first (BST) 01:30",
        r.Rule(r.DAILY, date(2025, 10, 25), time(1, 30), "Europe/London"),
        [utc(2025, 10, 25, 0, 30), utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)],
    ),
    (
        "daily 02:30 New York: the gap day moves to 03:00 EDT",
        r.Rule(r.DAILY, date(2025, 3, 8), time(2, 30), "America/New_York"),
        [utc(2025, 3, 8, 7, 30), utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 30)],
    ),
    (
        "daily 01:30 New York: the overlap day takes the first (EDT) 01:30",
        r.Rule(r.DAILY, date(2025, 11, 1), time(1, 30), "America/New_York"),
        [utc(2025, 11, 1, 5, 30), utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)],
    ),
    (
        "every 2 days",
        r.Rule(r.DAILY, date(2025, 1, 30), time(8, 0), interval=2),
        [utc(2025, 1, 30, 8), utc(2025, 2, 1, 8), utc(2025, 2, 3, 8)],
    ),
    (
        "every other week on Monday and Thursday, starting on a Wednesday",
        r.Rule(r.WEEKLY, date(2025, 1, 1), time(12, 0), interval=2, weekdays=("TH", "MO")),
        [utc(2025, 1, 2, 12), utc(2025, 1, 13, 12), utc(2025, 1, 16, 12), utc(2025, 1, 27, 12)],
    ),
    (
        "weekly without weekdays: the start date's weekday",
        r.Rule(r.WEEKLY, date(2025, 6, 4), time(9, 0)),
        [utc(2025, 6, 4, 9), utc(2025, 6, 11, 9)],
    ),
    (
        "monthly on the last day (leap February)",
        r.Rule(r.MONTHLY, date(2024, 1, 31), time(9, 0), month_day=r.LAST_DAY),
        [utc(2024, 1, 31, 9), utc(2024, 2, 29, 9), utc(2024, 3, 31, 9), utc(2024, 4, 30, 9)],
    ),
    (
        "quarterly on the 15th at 10:00 London (BST in summer)",
        r.Rule(r.MONTHLY, date(2025, 1, 15), time(10, 0), "Europe/London", interval=3),
        [
            utc(2025, 1, 15, 10),
            utc(2025, 4, 15, 9),
            utc(2025, 7, 15, 9),
            utc(2025, 10, 15, 9),
            utc(2026, 1, 15, 10),
        ],
    ),
    (
        "quarterly on the last day, across the year end",
        r.Rule(r.MONTHLY, date(2025, 3, 31), time(22, 0), interval=3, month_day=-1),
        [utc(2025, 3, 31, 22), utc(2025, 6, 30, 22), utc(2025, 9, 30, 22), utc(2025, 12, 31, 22)],
    ),
    (
        "monthly: a start date after the month day begins next month",
        r.Rule(r.MONTHLY, date(2025, 1, 20), time(6, 0), month_day=5),
        [utc(2025, 2, 5, 6), utc(2025, 3, 5, 6)],
    ),
    (
        "until is inclusive and ends the series",
        r.Rule(r.DAILY, date(2025, 1, 1), time(0, 0), until=date(2025, 1, 3)),
        [utc(2025, 1, 1), utc(2025, 1, 2), utc(2025, 1, 3)],
    ),
    (
        "once, in Tokyo (the local date is a day ahead of UTC)",
        r.Rule(r.ONCE, date(2025, 5, 1), time(6, 0), "Asia/Tokyo"),
        [utc(2025, 4, 30, 21)],
    ),
]


@pytest.mark.parametrize(("rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_occurrences(rule, expected):
    assert r.rule_errors(rule) == {}
    got = [o.at for o in r.occurrences(rule, BEFORE, len(expected) + 1)]
    if rule.until is not None or rule.frequency == r.ONCE:
        assert got == expected  # and nothing after the end
    else:
        assert got[: len(expected)] == expected
    assert all(a < b for a, b in zip(got, got[1:], strict=False))


def test_gap_and_overlap_are_flagged():
    london = r.zone("Europe/London")
    gap = r.resolve(date(2025, 3, 30), time(1, 30), london)
    assert (gap.at, gap.exists) == (utc(2025, 3, 30, 1), False)
    overlap = r.resolve(date(2025, 10, 26), time(1, 30), london)
    assert (overlap.at, overlap.exists, overlap.ambiguous) == (utc(2025, 10, 26, 0, 30), True, True)
    plain = r.resolve(date(2025, 7, 1), time(1, 30), london)
    assert (plain.exists, plain.ambiguous) == (True, False)


def test_next_occurrence_is_strictly_after_and_resumes_mid_series():
    rule = r.Rule(r.WEEKLY, date(2025, 3, 1), time(2, 0), "Europe/London", weekdays=("SA",))
    assert r.next_occurrence(rule, utc(2025, 3, 29, 2)).at == utc(2025, 4, 5, 1)
    assert r.next_occurrence(rule, utc(2025, 3, 29, 1, 59)).at == utc(2025, 3, 29, 2)
    assert r.next_occurrence(r.Rule(r.ONCE, date(2025, 1, 1), time(0, 0)), utc(2025, 1, 1)) is None


def test_local_text_names_the_offset():
    assert r.local_text(utc(2025, 4, 5, 1), "Europe/London") == (
        "2025-04-05 02:00 BST (Europe/London)"
    )


INVALID = [
    ("unknown zone", r.Rule(r.DAILY, date(2025, 1, 1), time(2, 0), "Mars/Olympus"), "time_zone"),
    (
        "not a zone path",
        r.Rule(r.DAILY, date(2025, 1, 1), time(2, 0), "../etc/passwd"),
        "time_zone",
    ),
    (
        "one-off in the London spring gap",
        r.Rule(r.ONCE, date(2025, 3, 30), time(1, 30), "Europe/London"),
        "at_time",
    ),
    (
        "one-off in the New York spring gap",
        r.Rule(r.ONCE, date(2025, 3, 9), time(2, 0), "America/New_York"),
        "at_time",
    ),
    ("seconds", r.Rule(r.DAILY, date(2025, 1, 1), time(2, 0, 30)), "at_time"),
    ("day 31", r.Rule(r.MONTHLY, date(2025, 1, 1), time(2, 0), month_day=31), "month_day"),
    ("day 29", r.Rule(r.MONTHLY, date(2025, 1, 1), time(2, 0), month_day=29), "month_day"),
    ("day 0", r.Rule(r.MONTHLY, date(2025, 1, 1), time(2, 0), month_day=0), "month_day"),
    ("start on the 30th", r.Rule(r.MONTHLY, date(2025, 1, 30), time(2, 0)), "month_day"),
    ("day on daily", r.Rule(r.DAILY, date(2025, 1, 1), time(2, 0), month_day=3), "month_day"),
    ("weekday code", r.Rule(r.WEEKLY, date(2025, 1, 1), time(2, 0), weekdays=("XX",)), "weekdays"),
    (
        "weekday twice",
        r.Rule(r.WEEKLY, date(2025, 1, 1), time(2, 0), weekdays=("MO", "MO")),
        "weekdays",
    ),
    (
        "weekdays on monthly",
        r.Rule(r.MONTHLY, date(2025, 1, 1), time(2, 0), weekdays=("MO",)),
        "weekdays",
    ),
    ("interval 0", r.Rule(r.DAILY, date(2025, 1, 1), time(2, 0), interval=0), "interval"),
    ("interval too big", r.Rule(r.DAILY, date(2025, 1, 1), time(2, 0), interval=999), "interval"),
    (
        "until before start",
        r.Rule(r.DAILY, date(2025, 1, 2), time(2, 0), until=date(2025, 1, 1)),
        "until_date",
    ),
    ("frequency", r.Rule("hourly", date(2025, 1, 1), time(2, 0)), "frequency"),
]


@pytest.mark.parametrize(("rule", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_rules_are_refused_on_the_right_field(rule, field):
    errors = r.rule_errors(rule)
    assert field in errors, errors
    assert all(isinstance(m, str) and m for m in errors[field])


def test_gap_message_says_why():
    errors = r.rule_errors(r.Rule(r.ONCE, date(2025, 3, 30), time(1, 30), "Europe/London"))
    assert "01:30 does not exist on 2025-03-30 in Europe/London" in errors["at_time"][0]


def test_recurring_rule_in_a_gap_is_valid_and_moves_only_that_day():
    # 02:30 New York every day is a fine rule; only 9 March moves (to 03:00 EDT).
    rule = r.Rule(r.DAILY, date(2025, 3, 1), time(2, 30), "America/New_York")
    assert r.rule_errors(rule) == {}
    moved = [o for o in r.occurrences(rule, BEFORE, 40) if not o.exists]
    assert [o.at for o in moved] == [utc(2025, 3, 9, 7)]
