"""Status rules: from what a collection saw to Green / Yellow / Red, visibility and reasons.

Pure functions over plain dataclasses: no I/O, no Django models, no clock (``now`` is passed in),
so every rule can be tested over a table of cases. Reason codes are a stable public contract
(``docs/monitoring.md``); messages are for people and carry the numbers they are about.

Boundaries (chosen once, documented and tested):
- lag thresholds are alarm levels: lag **at or above** the yellow threshold is yellow, at or
  above the red threshold is red;
- the RPO target is a promise: lag **over** the target is a breach, lag equal to it is not;
- an observation is stale when it is **older than** the freshness requirement (age > freshness);
- a heartbeat is late when it is **older than** its maximum age at the time of the observation.

Loss of visibility: when a side cannot be seen (unreachable, timeout, authentication or
permission failure, not configured), when the collection itself failed, when nothing was ever
observed, or when the last successful observation is stale. The state is then never green: a side
that cannot be seen or a failed collection is red (readiness cannot be shown, and a dead primary
must be red quickly); a stale observation is at least yellow. Rules about values (lag, roles,
replication) only speak about an observation in which both sides were seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

GREEN, YELLOW, RED = "green", "yellow", "red"
OK, LOST = "ok", "lost"
_RANK = {GREEN: 0, YELLOW: 1, RED: 2}

# Side outcomes (the values of connectors.contract.Outcome) -> reason code suffix and wording.
_OUTCOME_CODES = {
    "connection_error": ("unreachable", "unreachable"),
    "timeout": ("timeout", "did not answer in time"),
    "auth_failed": ("auth_failed", "refused the monitoring credentials"),
    "permission_denied": ("permission_denied", "denied a monitoring query (missing privilege)"),
    "not_configured": ("not_configured", "is not configured"),
}
_SIDE_LABEL = {"primary": "primary side", "dr": "DR side"}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    member: str | None = None  # set by rollup(): which member of a group this is about

    def as_dict(self) -> dict[str, str]:
        data = {"code": self.code, "message": self.message}
        if self.member is not None:
            data["member"] = self.member
        return data


@dataclass(frozen=True)
class Evaluation:
    state: str
    visibility: str
    reasons: tuple[Reason, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def reason_dicts(self) -> list[dict[str, str]]:
        return [r.as_dict() for r in self.reasons]


@dataclass(frozen=True)
class SideInput:
    """How one side (the member at the configured primary or DR site) looked."""

    outcome: str = "ok"  # ok, connection_error, timeout, auth_failed, permission_denied, ...
    role: str = "unknown"  # primary, standby, other, unknown
    error: str = ""  # sanitized text from the connector

    @property
    def visible(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class RuleInput:
    """One collection attempt, or the last known values when an attempt could not see."""

    observed_at: datetime | None  # when the values were observed; None: never observed
    primary: SideInput = field(default_factory=SideInput)
    dr: SideInput = field(default_factory=SideInput)
    replication: str = "unknown"  # streaming, paused, stopped, broken, unknown
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    marker_available: bool = False
    heartbeat_at: datetime | None = None
    # The collection itself failed before the connector could say anything about the sides
    # (unknown platform, secret not resolvable, connector crash, guard timeout).
    failure: Reason | None = None

    @property
    def visible(self) -> bool:
        return self.failure is None and self.primary.visible and self.dr.visible


@dataclass(frozen=True)
class Thresholds:
    yellow_lag_seconds: float
    red_lag_seconds: float
    rpo_target_seconds: float
    freshness_seconds: float
    heartbeat_max_age_seconds: float | None = None  # None: no heartbeat configured


def worst(states: Iterable[str]) -> str:
    return max(states, key=lambda s: _RANK.get(s, 2), default=GREEN)


def _num(value: float) -> str:
    return f"{value:g}"


def _threshold_message(what: str, value: float, level: str, threshold: float) -> str:
    verb = "reaches" if value == threshold else "exceeds"
    return f"{what} {value:.1f} s {verb} the {level} threshold of {_num(threshold)} s"


class _Collector:
    def __init__(self) -> None:
        self.state = GREEN
        self.visibility = OK
        self.reasons: list[Reason] = []

    def add(self, state: str, code: str, message: str, *, lost: bool = False) -> None:
        self.state = worst([self.state, state])
        if lost:
            self.visibility = LOST
        self.reasons.append(Reason(code, message))

    def result(self) -> Evaluation:
        return Evaluation(self.state, self.visibility, tuple(self.reasons))


def _side_reasons(out: _Collector, name: str, side: SideInput) -> None:
    if side.visible:
        return
    suffix, wording = _OUTCOME_CODES.get(side.outcome, ("error", "failed"))
    detail = f": {side.error}" if side.error else ""
    out.add(RED, f"{name}_{suffix}", f"{_SIDE_LABEL[name]} {wording}{detail}", lost=True)


def _staleness(out: _Collector, observed_at: datetime | None, freshness: float, now: datetime):
    if observed_at is None:
        out.add(RED, "never_observed", "No successful observation has been made yet.", lost=True)
        return
    age = (now - observed_at).total_seconds()
    if age > freshness:
        out.add(
            YELLOW,
            "stale",
            f"last successful observation is {age:.0f} s old, "
            f"older than the freshness requirement of {_num(freshness)} s",
            lost=True,
        )


def _value_reasons(out: _Collector, inp: RuleInput, th: Thresholds) -> None:
    roles = (inp.primary.role, inp.dr.role)
    if roles == ("primary", "primary"):
        out.add(RED, "both_primary", "Both sides report the primary role (split brain).")
    elif "primary" not in roles:
        out.add(RED, "no_primary", f"Neither side is primary (roles: {roles[0]}, {roles[1]}).")

    replication = inp.replication
    if replication == "stopped":
        out.add(RED, "replication_stopped", "Replication is stopped: no replication connection.")
    elif replication == "broken":
        out.add(RED, "replication_broken", "Replication is broken (error state).")
    elif replication == "paused":
        out.add(YELLOW, "replication_paused", "Replication apply/replay is paused on the DR side.")
    elif replication != "streaming":
        out.add(YELLOW, "replication_unknown", "The replication state could not be determined.")

    lag = inp.lag_seconds
    if lag is None:
        if replication in ("streaming", "paused"):
            out.add(YELLOW, "lag_unknown", "The replication lag could not be measured.")
    else:
        if lag >= th.red_lag_seconds:
            out.add(RED, "lag_red", _threshold_message("lag", lag, "red", th.red_lag_seconds))
        elif lag >= th.yellow_lag_seconds:
            out.add(
                YELLOW,
                "lag_yellow",
                _threshold_message("lag", lag, "yellow", th.yellow_lag_seconds),
            )
        if lag > th.rpo_target_seconds:
            out.add(
                RED,
                "rpo_breach",
                f"lag {lag:.1f} s is over the RPO target of {_num(th.rpo_target_seconds)} s",
            )

    if not inp.marker_available:
        out.add(
            YELLOW,
            "marker_unavailable",
            "Replication marker unavailable: cannot prove completeness.",
        )

    if th.heartbeat_max_age_seconds is not None and inp.observed_at is not None:
        if inp.heartbeat_at is None:
            out.add(YELLOW, "heartbeat_late", "No heartbeat could be read on the DR side.")
        else:
            age = (inp.observed_at - inp.heartbeat_at).total_seconds()
            if age > th.heartbeat_max_age_seconds:
                out.add(
                    YELLOW,
                    "heartbeat_late",
                    f"heartbeat is {age:.1f} s old, older than the maximum of "
                    f"{_num(th.heartbeat_max_age_seconds)} s",
                )


def evaluate(inp: RuleInput, thresholds: Thresholds, now: datetime) -> Evaluation:
    """The status of one resource from one attempt (or its last known values) at ``now``."""
    out = _Collector()
    if inp.failure is not None:
        out.add(RED, inp.failure.code, inp.failure.message, lost=True)
    _side_reasons(out, "primary", inp.primary)
    _side_reasons(out, "dr", inp.dr)
    _staleness(out, inp.observed_at, thresholds.freshness_seconds, now)
    if inp.visible and inp.observed_at is not None:
        _value_reasons(out, inp, thresholds)
    return out.result()


@dataclass(frozen=True)
class DrillInput:
    """What the drill programme knows about one resource."""

    tier: int
    cadence_days: float  # the tier's cadence
    last_passed_at: datetime | None  # the last passed drill; None: none on record
    created_at: datetime | None  # when the resource was added (start of the grace period)
    grace_days: float  # how long a resource without a passed drill is not yet overdue


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.0f}"


def drill_reason(drill: DrillInput, now: datetime) -> Reason | None:
    """``drill_overdue`` when the last passed drill is **older than** the cadence.

    Exactly at the cadence is not overdue; one second over is. A resource with no passed drill is
    overdue once it has existed for longer than the grace period (a resource added today is not
    instantly overdue); with no creation time either, it is overdue at once.
    """
    cadence = drill.cadence_days * 86400
    if drill.last_passed_at is not None:
        age = (now - drill.last_passed_at).total_seconds()
        if age <= cadence:
            return None
        return Reason(
            "drill_overdue",
            f"last passed drill {_days(age)} days ago; "
            f"tier {drill.tier} cadence is {_num(drill.cadence_days)} days",
        )
    if drill.created_at is not None:
        if (now - drill.created_at).total_seconds() <= drill.grace_days * 86400:
            return None
        since = f"; added {_days((now - drill.created_at).total_seconds())} days ago"
    else:
        since = ""
    return Reason(
        "drill_overdue",
        f"no passed drill on record{since}; tier {drill.tier} cadence is "
        f"{_num(drill.cadence_days)} days",
    )


@dataclass(frozen=True)
class SiteInput:
    """Where the service recorded the primary role, and what the last observation showed.

    Sites are given by name; ``primary_role``/``dr_role`` are the roles observed at the members of
    the configured primary and DR sites in the last observation in which both were seen.
    """

    primary_site: str
    dr_site: str
    current_site: str  # recorded: the primary site until an execution moved it
    primary_role: str = ""
    dr_role: str = ""
    observed_at: datetime | None = None
    current_since: datetime | None = None  # when the recorded current site last changed


def observed_primary_site(site: SiteInput) -> str | None:
    """The site whose member the observation saw as the one primary (None: none or both)."""
    roles = (site.primary_role, site.dr_role)
    if roles.count("primary") != 1:
        return None  # no_primary / both_primary are reasons of their own
    return site.primary_site if site.primary_role == "primary" else site.dr_site


def site_reason(site: SiteInput) -> Reason | None:
    """``unexpected_primary_site`` when monitoring sees the primary somewhere else than recorded.

    Neither side is trusted silently: the primary moved outside this service (or a move's result
    was not recorded), so failback targets and readiness may be wrong until someone looks. An
    observation older than the recorded move says nothing about it and is not compared.
    """
    if site.observed_at is None:
        return None
    if site.current_since is not None and site.observed_at < site.current_since:
        return None
    observed = observed_primary_site(site)
    if observed is None or observed == site.current_site:
        return None
    return Reason(
        "unexpected_primary_site",
        f"monitoring sees the primary at {observed}, but the recorded current site is "
        f"{site.current_site}",
    )


# Reasons worked out when a status is read (from the clock and the inventory), never stored.
READ_TIME_CODES = ("stale", "never_observed", "drill_overdue", "unexpected_primary_site")


def at_read_time(
    evaluation: Evaluation,
    observed_at: datetime | None,
    freshness_seconds: float,
    now: datetime,
    *,
    drill: DrillInput | None = None,
    site: SiteInput | None = None,
) -> Evaluation:
    """A stored evaluation as it must be shown at ``now``.

    A status written by the last collection says nothing about the time passed since; if
    collection stopped, a stored "green" would be stale data shown as current (invariant 9). This
    recomputes the ``stale``/``never_observed`` reason for ``now`` and turns it into a loss of
    visibility. It only ever adds: a loss recorded by the collection is kept.

    With ``drill``/``site`` it also adds ``drill_overdue`` and ``unexpected_primary_site``, both
    yellow (they need attention, not a page; visibility is not affected). They depend on the
    clock and on what executions recorded, so they are evaluated here, at every read, and a
    passed drill or a recorded move shows at once, without waiting for the next collection.
    """
    out = _Collector()
    out.state, out.visibility = evaluation.state, evaluation.visibility
    out.reasons = [r for r in evaluation.reasons if r.code not in READ_TIME_CODES]
    _staleness(out, observed_at, freshness_seconds, now)
    if out.visibility == LOST and out.state == GREEN:
        out.state = YELLOW
    extra = [
        drill_reason(drill, now) if drill is not None else None,
        site_reason(site) if site is not None else None,
    ]
    for reason in extra:
        if reason is not None:
            out.add(YELLOW, reason.code, reason.message)
    return out.result()


def rollup(members: Sequence[tuple[str, Evaluation]]) -> Evaluation:
    """A group's status: the worst member wins, any member's loss of visibility is the group's.

    Reasons name the member they come from; green, visible members contribute none.
    """
    if not members:
        return Evaluation(RED, LOST, (Reason("no_members", "The group has no members."),))
    state = worst(e.state for _, e in members)
    visibility = LOST if any(e.visibility == LOST for _, e in members) else OK
    reasons = tuple(
        replace(r, message=f"{name}: {r.message}", member=name)
        for name, e in members
        for r in e.reasons
    )
    return Evaluation(state, visibility, reasons)
