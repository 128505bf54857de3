"""Recurrence and time-zone rules of request schedules: pure functions, no I/O, no clock.

A schedule names a local wall-clock time in an IANA time zone ("02:00 on Saturdays in
Europe/London") and either one date or a recurrence. This module turns that into planned
instants in UTC, which is what the database stores and the worker compares with ``now``.

The recurrence is a small subset of RFC 5545 ``RRULE``, implemented here to avoid a dependency:

- ``once``: the start date only;
- ``daily``: every ``interval`` days from the start date;
- ``weekly``: on the given weekdays of every ``interval``-th week, weeks starting on Monday
  (RFC 5545's default ``WKST=MO``) and counted from the week of the start date;
- ``monthly``: on day ``month_day`` (1-28, or -1 for the last day) of every ``interval``-th month
  counted from the start month; quarterly is monthly with interval 3. Days 29-31 are refused
  rather than silently skipped in short months (RFC 5545 would skip them).

Daylight-saving time, decided once:

- a local time that does not exist (the spring-forward gap) is refused for one-off schedules;
  for a recurrence that occurrence moves to the first valid instant after the gap (02:30 in
  America/New_York on the spring-forward day becomes 03:00 EDT). RFC 5545 would instead keep the
  offset from before the gap (03:30 EDT); running at the moment the gap ends is closer to the
  intended time and never later than an hour's drift;
- an ambiguous local time (the fall-back overlap) means its first occurrence (``fold=0``, the
  daylight-saving offset), as RFC 5545 says.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

ONCE, DAILY, WEEKLY, MONTHLY = "once", "daily", "weekly", "monthly"
FREQUENCIES = (ONCE, DAILY, WEEKLY, MONTHLY)
# RFC 5545 weekday codes, Monday first (date.weekday() order).
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
LAST_DAY = -1
MAX_INTERVAL = 366
# Safety net for the search loops: a valid rule always yields a date long before this.
_MAX_CANDIDATES = 5000


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """IANA zone names known to this host's tz database (read once)."""
    return frozenset(available_timezones() | {"UTC"})


def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; ValueError for anything that is not an IANA zone name."""
    if name not in time_zones():
        raise ValueError(f"'{name}' is not an IANA time zone name (e.g. Europe/London).")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # listed but unreadable: same answer
        raise ValueError(f"'{name}' is not an IANA time zone name.") from exc


@dataclass(frozen=True)
class Rule:
    """When a schedule's occurrences fall, in local wall-clock terms."""

    frequency: str
    start_date: date
    at: time
    time_zone: str = "UTC"
    interval: int = 1
    weekdays: tuple[str, ...] = ()  # weekly; empty: the start date's weekday
    month_day: int | None = None  # monthly; None: the start date's day
    until: date | None = None  # last date an occurrence may fall on (inclusive)


@dataclass(frozen=True)
class Resolved:
    """A local date and time placed on the UTC time line."""

    at: datetime  # aware, UTC
    exists: bool = True  # False: the local time fell in a gap and was moved to its end
    ambiguous: bool = False  # True: the local time happens twice; the first was taken


def rule_errors(rule: Rule) -> dict[str, list[str]]:
    """Field errors of a rule (empty: valid). Keys are the model's field names."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if rule.frequency not in FREQUENCIES:
        add("frequency", f"Choose one of {', '.join(FREQUENCIES)}.")
    try:
        tz = zone(rule.time_zone)
    except ValueError as exc:
        add("time_zone", str(exc))
        tz = None
    if rule.at is not None and (rule.at.second or rule.at.microsecond):
        add("at_time", "Give hours and minutes only.")
    if rule.frequency == ONCE:
        if tz is not None and rule.start_date and rule.at is not None:
            found = resolve(rule.start_date, rule.at, tz)
            if not found.exists:
                add(
                    "at_time",
                    f"{rule.at:%H:%M} does not exist on {rule.start_date} in {rule.time_zone} "
                    "(the clocks go forward then); choose another time.",
                )
        return errors
    if not 1 <= (rule.interval or 0) <= MAX_INTERVAL:
        add("interval", f"Between 1 and {MAX_INTERVAL}.")
    if rule.until is not None and rule.start_date and rule.until < rule.start_date:
        add("until_date", "Must not be before the start date.")
    if rule.frequency == WEEKLY:
        unknown = [d for d in rule.weekdays if d not in WEEKDAYS]
        if unknown:
            add("weekdays", f"Unknown weekday(s) {', '.join(unknown)}; use {', '.join(WEEKDAYS)}.")
        elif len(set(rule.weekdays)) != len(rule.weekdays):
            add("weekdays", "Each weekday at most once.")
    elif rule.weekdays:
        add("weekdays", "Weekdays apply to weekly schedules only.")
    if rule.frequency == MONTHLY:
        day = rule.month_day if rule.month_day is not None else rule.start_date.day
        if day != LAST_DAY and not 1 <= day <= 28:
            add(
                "month_day",
                "Days 29-31 do not exist in every month: choose 1-28, or -1 for the last day.",
            )
    elif rule.month_day is not None:
        add("month_day", "A day of the month applies to monthly schedules only.")
    return errors


def resolve(day: date, at: time, tz: ZoneInfo) -> Resolved:
    """``day`` at ``at`` in ``tz`` as a UTC instant, with the gap and fold rules applied."""
    first = datetime.combine(day, at, tzinfo=tz).replace(fold=0)
    second = first.replace(fold=1)
    utc_first, utc_second = first.astimezone(UTC), second.astimezone(UTC)
    if utc_first == utc_second:
        return Resolved(utc_first)
    # Round trip through UTC: a time that exists comes back with the same wall clock.
    if utc_first.astimezone(tz).replace(tzinfo=None) == first.replace(tzinfo=None):
        return Resolved(utc_first, ambiguous=True)
    # In a gap, fold=0 reads the time with the offset before the transition (giving a UTC
    # instant after it) and fold=1 with the offset after (an instant before it): the transition
    # lies between the two. Its instant is where the wall clock resumes: the end of the gap.
    low, high = sorted((utc_first, utc_second))
    return Resolved(_transition(low, high, tz), exists=False)


def _transition(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (low, high] with the offset in force at ``high`` (to the second)."""
    after = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).utcoffset() == after:
            high = mid
        else:
            low = mid
    return high


def _weeks_between(a: date, b: date) -> int:
    """Whole Monday-start weeks from the week of ``a`` to the week of ``b``."""
    return ((b - timedelta(days=b.weekday())) - (a - timedelta(days=a.weekday()))).days // 7


def _month_date(year: int, month: int, day: int) -> date:
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if day == LAST_DAY else day)


def dates_from(rule: Rule, first: date) -> Iterator[date]:
    """The rule's local dates on or after ``first`` (and the start date), in order."""
    begin = max(first, rule.start_date)
    n = max(rule.interval or 1, 1)
    if rule.frequency == ONCE:
        candidates: Iterator[date] = iter([rule.start_date] if rule.start_date >= begin else [])
    elif rule.frequency == DAILY:
        offset = (begin - rule.start_date).days
        steps = -(-offset // n)  # ceiling: the first multiple of n on or after begin
        candidates = (rule.start_date + timedelta(days=(steps + i) * n) for i in range(10**9))
    elif rule.frequency == WEEKLY:
        candidates = _weekly(rule, begin, n)
    else:
        candidates = _monthly(rule, begin, n)
    for count, day in enumerate(candidates):
        if count >= _MAX_CANDIDATES or (rule.until is not None and day > rule.until):
            return
        yield day


def _weekly(rule: Rule, begin: date, n: int) -> Iterator[date]:
    days = sorted(
        WEEKDAYS.index(d) for d in (rule.weekdays or (WEEKDAYS[rule.start_date.weekday()],))
    )
    week = _weeks_between(rule.start_date, begin)
    week += -week % n  # the first week of the cycle on or after begin's week
    monday0 = rule.start_date - timedelta(days=rule.start_date.weekday())
    while True:
        monday = monday0 + timedelta(weeks=week)
        for wd in days:
            day = monday + timedelta(days=wd)
            if day >= begin:
                yield day
        week += n


def _monthly(rule: Rule, begin: date, n: int) -> Iterator[date]:
    day = rule.month_day if rule.month_day is not None else rule.start_date.day
    index = (begin.year - rule.start_date.year) * 12 + begin.month - rule.start_date.month
    index += -index % n
    while True:
        year, month0 = divmod(rule.start_date.month - 1 + index, 12)
        found = _month_date(rule.start_date.year + year, month0 + 1, day)
        if found >= begin:
            yield found
        index += n


def next_occurrence(rule: Rule, after: datetime) -> Resolved | None:
    """The first occurrence planned strictly after ``after`` (aware), or None when none is left."""
    tz = zone(rule.time_zone)
    # Start a day early: the local date of ``after`` may lag or lead its UTC date.
    first = after.astimezone(tz).date() - timedelta(days=1)
    for day in dates_from(rule, first):
        found = resolve(day, rule.at, tz)
        if found.at > after:
            return found
    return None


def occurrences(rule: Rule, after: datetime, count: int) -> list[Resolved]:
    """Up to ``count`` occurrences after ``after``, for previews and tests."""
    found: list[Resolved] = []
    cursor = after
    while len(found) < count:
        item = next_occurrence(rule, cursor)
        if item is None:
            break
        found.append(item)
        cursor = item.at
    return found


def local_text(at: datetime, time_zone: str) -> str:
    """An instant as the schedule's local wall clock with its offset name, for messages."""
    local = at.astimezone(zone(time_zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({time_zone})"
