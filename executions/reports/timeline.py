"""Time accounting over one resource's status history: pure functions, no database.

How every second of a period [start, end) is counted (docs/audit.md, "Readiness report"):

- A raw sample holds from its time until the next point, but never longer than the resource's
  ``freshness_seconds``: after that the status would be shown as a loss of visibility
  (invariant 9), so the history must not claim more.
- A rollup (5-minute bucket) holds from its start until the bucket's end or the next point,
  whichever is first. Its invisible samples' share of that time is ``no_visibility``; the rest
  is the bucket's *worst* state (conservative: a breach inside a bucket is never averaged away).
- A sample taken while the target could not be seen counts as ``no_visibility``, whatever colour
  it was evaluated to.
- Time covered by no point at all (collection stopped, before the first sample, after the last
  one went stale) also counts as ``no_visibility``, and is reported again on its own as
  ``unobserved``: nobody could see the resource, and nothing says what it was.

So green + yellow + red + no_visibility = the period, exactly.

RPO breaches: a point breaches when its lag (a rollup: its maximum lag) is above the RPO target.
Consecutive breaching points whose coverage touches form one breach, from the first one's start
to the end of the last one's coverage; a point that does not breach, has no lag (not visible),
or a gap in coverage ends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

CATEGORIES = ("green", "yellow", "red", "no_visibility")
MAX_BREACHES_LISTED = 50


@dataclass(frozen=True)
class HistoryPoint:
    at: datetime
    state: str
    visible_fraction: float  # 1.0 for a visible raw sample, 0.0 for an invisible one
    lag_seconds: float | None
    bucket_seconds: int = 0  # 0: a raw sample


@dataclass
class Breach:
    start: datetime
    end: datetime
    max_lag_seconds: float

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class Account:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    unobserved_seconds: float = 0.0
    breaches: list[Breach] = field(default_factory=list)

    @property
    def breach_seconds(self) -> float:
        return sum(b.seconds for b in self.breaches)


def account(
    points: Iterable[HistoryPoint],
    *,
    start: datetime,
    end: datetime,
    freshness_seconds: float,
    rpo_target_seconds: float,
) -> Account:
    """Count [start, end) over ``points`` (time order; may begin before ``start``)."""
    out = Account()
    if end <= start:
        return out
    ordered = list(points)
    covered_until = start
    open_breach: Breach | None = None
    for index, point in enumerate(ordered):
        next_at = ordered[index + 1].at if index + 1 < len(ordered) else None
        limit = (
            timedelta(seconds=point.bucket_seconds)
            if point.bucket_seconds
            else timedelta(seconds=freshness_seconds)
        )
        p_end = point.at + limit
        if next_at is not None:
            p_end = min(p_end, next_at)
        lo, hi = max(point.at, start), min(p_end, end)
        if hi <= lo:
            continue
        if lo > covered_until:
            out.unobserved_seconds += (lo - covered_until).total_seconds()
            open_breach = _close(out, open_breach)
        span = (hi - lo).total_seconds()
        seen = span * point.visible_fraction
        out.seconds["no_visibility"] += span - seen
        state = point.state if point.state in CATEGORIES else "red"
        out.seconds[state] += seen
        covered_until = max(covered_until, hi)
        if point.lag_seconds is not None and point.lag_seconds > rpo_target_seconds:
            if open_breach is None:
                open_breach = Breach(lo, hi, point.lag_seconds)
            else:
                open_breach.end = hi
                open_breach.max_lag_seconds = max(open_breach.max_lag_seconds, point.lag_seconds)
        else:
            open_breach = _close(out, open_breach)
    _close(out, open_breach)
    if covered_until < end:
        out.unobserved_seconds += (end - covered_until).total_seconds()
    out.seconds["no_visibility"] += out.unobserved_seconds
    return out


def _close(out: Account, breach: Breach | None) -> None:
    if breach is not None:
        out.breaches.append(breach)
    return None
