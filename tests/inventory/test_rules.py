"""Status rules over a table of cases, boundaries included. Pure functions: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inventory import rules
from inventory.rules import Evaluation, Reason, RuleInput, SideInput, Thresholds

NOW = datetime(2026, 11, 3, 12, 0, 0, tzinfo=UTC)
TH = Thresholds(
    yellow_lag_seconds=30,
    red_lag_seconds=60,
    rpo_target_seconds=90,
    freshness_seconds=120,
    heartbeat_max_age_seconds=None,
)
HEALTHY = RuleInput(
    observed_at=NOW,
    primary=SideInput(role="primary"),
    dr=SideInput(role="standby"),
    replication="streaming",
    lag_seconds=0.5,
    lag_bytes=0,
    marker_available=True,
)


def case(**changes):
    return replace(HEALTHY, **changes)


def side(outcome="ok", role="unknown", error=""):
    return SideInput(outcome=outcome, role=role, error=error)


CASES = [
    # id, input, thresholds, expected state, visibility, reason codes
    ("healthy", HEALTHY, TH, "green", "ok", []),
    ("lag just under yellow", case(lag_seconds=29.999), TH, "green", "ok", []),
    ("lag exactly yellow is yellow", case(lag_seconds=30.0), TH, "yellow", "ok", ["lag_yellow"]),
    ("lag between yellow and red", case(lag_seconds=45), TH, "yellow", "ok", ["lag_yellow"]),
    ("lag exactly red is red", case(lag_seconds=60.0), TH, "red", "ok", ["lag_red"]),
    ("lag exactly rpo is no breach", case(lag_seconds=90.0), TH, "red", "ok", ["lag_red"]),
    ("lag over rpo", case(lag_seconds=90.5), TH, "red", "ok", ["lag_red", "rpo_breach"]),
    (
        "rpo below yellow: breach before thresholds",
        case(lag_seconds=20),
        replace(TH, rpo_target_seconds=10),
        "red",
        "ok",
        ["rpo_breach"],
    ),
    ("lag unknown while streaming", case(lag_seconds=None), TH, "yellow", "ok", ["lag_unknown"]),
    (
        "replication stopped",
        case(replication="stopped", lag_seconds=None),
        TH,
        "red",
        "ok",
        ["replication_stopped"],
    ),
    ("replication broken", case(replication="broken"), TH, "red", "ok", ["replication_broken"]),
    ("replication paused", case(replication="paused"), TH, "yellow", "ok", ["replication_paused"]),
    (
        "replication unknown though visible",
        case(replication="unknown"),
        TH,
        "yellow",
        "ok",
        ["replication_unknown"],
    ),
    (
        "both primary",
        case(dr=side(role="primary")),
        TH,
        "red",
        "ok",
        ["both_primary"],
    ),
    (
        "no primary",
        case(primary=side(role="standby")),
        TH,
        "red",
        "ok",
        ["no_primary"],
    ),
    (
        "swapped roles after a failover are fine",
        case(primary=side(role="standby"), dr=side(role="primary")),
        TH,
        "green",
        "ok",
        [],
    ),
    (
        "marker unavailable",
        case(marker_available=False),
        TH,
        "yellow",
        "ok",
        ["marker_unavailable"],
    ),
    (
        "heartbeat exactly at max age is on time",
        case(heartbeat_at=NOW - timedelta(seconds=60)),
        replace(TH, heartbeat_max_age_seconds=60),
        "green",
        "ok",
        [],
    ),
    (
        "heartbeat late",
        case(heartbeat_at=NOW - timedelta(seconds=60.5)),
        replace(TH, heartbeat_max_age_seconds=60),
        "yellow",
        "ok",
        ["heartbeat_late"],
    ),
    (
        "heartbeat configured but missing",
        case(heartbeat_at=None),
        replace(TH, heartbeat_max_age_seconds=60),
        "yellow",
        "ok",
        ["heartbeat_late"],
    ),
    (
        "heartbeat ignored when not configured",
        case(heartbeat_at=NOW - timedelta(days=3)),
        TH,
        "green",
        "ok",
        [],
    ),
    (
        "stale exactly at freshness is not stale",
        case(observed_at=NOW - timedelta(seconds=120)),
        TH,
        "green",
        "ok",
        [],
    ),
    (
        "stale just past freshness",
        case(observed_at=NOW - timedelta(seconds=120.001)),
        TH,
        "yellow",
        "lost",
        ["stale"],
    ),
    (
        "stale and lag red stays red",
        case(observed_at=NOW - timedelta(seconds=500), lag_seconds=70),
        TH,
        "red",
        "lost",
        ["stale", "lag_red"],
    ),
    (
        "primary unreachable",
        case(primary=side("connection_error", error="connection refused"), lag_seconds=None),
        TH,
        "red",
        "lost",
        ["primary_unreachable"],
    ),
    (
        "dr timeout",
        case(dr=side("timeout"), lag_seconds=None),
        TH,
        "red",
        "lost",
        ["dr_timeout"],
    ),
    ("dr auth failed", case(dr=side("auth_failed")), TH, "red", "lost", ["dr_auth_failed"]),
    (
        "primary permission denied",
        case(primary=side("permission_denied")),
        TH,
        "red",
        "lost",
        ["primary_permission_denied"],
    ),
    (
        "dr not configured",
        case(dr=side("not_configured")),
        TH,
        "red",
        "lost",
        ["dr_not_configured"],
    ),
    ("dr generic error", case(dr=side("error")), TH, "red", "lost", ["dr_error"]),
    (
        "both sides down",
        case(primary=side("connection_error"), dr=side("timeout")),
        TH,
        "red",
        "lost",
        ["primary_unreachable", "dr_timeout"],
    ),
    (
        "never observed and cannot see",
        case(observed_at=None, dr=side("connection_error")),
        TH,
        "red",
        "lost",
        ["dr_unreachable", "never_observed"],
    ),
    (
        "collection failure",
        RuleInput(observed_at=None, failure=Reason("collection_timeout", "timeout: 11 s")),
        TH,
        "red",
        "lost",
        ["collection_timeout", "never_observed"],
    ),
]


@pytest.mark.parametrize(
    ("inp", "th", "state", "visibility", "codes"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_evaluate_table(inp, th, state, visibility, codes):
    result = rules.evaluate(inp, th, NOW)
    assert (result.state, result.visibility, result.codes) == (state, visibility, codes)


def test_never_green_without_visibility():
    for _, inp, th, *_ in CASES:
        result = rules.evaluate(inp, th, NOW)
        if result.visibility == "lost":
            assert result.state != "green"


def test_value_rules_are_silent_when_a_side_cannot_be_seen():
    """A dead DR side says so; it does not add lag or replication guesses on top."""
    blind = case(dr=side("connection_error"), replication="unknown", lag_seconds=None)
    assert rules.evaluate(blind, TH, NOW).codes == ["dr_unreachable"]


def test_messages_carry_the_numbers():
    result = rules.evaluate(case(lag_seconds=42.0), replace(TH, red_lag_seconds=30), NOW)
    assert result.reasons[0].message == "lag 42.0 s exceeds the red threshold of 30 s"
    at_threshold = rules.evaluate(case(lag_seconds=30.0), TH, NOW)
    assert at_threshold.reasons[0].message == "lag 30.0 s reaches the yellow threshold of 30 s"
    stale = rules.evaluate(case(observed_at=NOW - timedelta(seconds=300)), TH, NOW)
    assert "300 s old" in stale.reasons[0].message and "120 s" in stale.reasons[0].message
    err = rules.evaluate(case(dr=side("connection_error", error="refused")), TH, NOW)
    assert err.reasons[0].message == "DR side unreachable: refused"
    assert (
        "cannot prove completeness"
        in rules.evaluate(case(marker_available=False), TH, NOW).reasons[0].message.lower()
    )


class TestAtReadTime:
    """A stored status shown later: time passing must turn fresh values into stale ones."""

    green = Evaluation("green", "ok", ())

    def test_fresh_stays_as_stored(self):
        shown = rules.at_read_time(self.green, NOW - timedelta(seconds=120), 120, NOW)
        assert shown == self.green

    def test_stale_loses_visibility_and_is_not_green(self):
        shown = rules.at_read_time(self.green, NOW - timedelta(seconds=121), 120, NOW)
        assert (shown.state, shown.visibility, shown.codes) == ("yellow", "lost", ["stale"])

    def test_stale_reason_is_recomputed_not_duplicated(self):
        stored = rules.at_read_time(self.green, NOW - timedelta(seconds=200), 120, NOW)
        later = rules.at_read_time(
            stored, NOW - timedelta(seconds=200), 120, NOW + timedelta(seconds=60)
        )
        assert later.codes == ["stale"]
        assert "260 s old" in later.reasons[0].message

    def test_keeps_a_loss_recorded_by_collection(self):
        stored = Evaluation("red", "lost", (Reason("dr_unreachable", "DR side unreachable"),))
        shown = rules.at_read_time(stored, NOW - timedelta(seconds=10), 120, NOW)
        assert (shown.state, shown.visibility, shown.codes) == ("red", "lost", ["dr_unreachable"])

    def test_never_observed(self):
        shown = rules.at_read_time(self.green, None, 120, NOW)
        assert (shown.state, shown.visibility, shown.codes) == ("red", "lost", ["never_observed"])


class TestRollup:
    def test_worst_member_wins_and_reasons_name_it(self):
        group = rules.rollup(
            [
                ("orders", Evaluation("green", "ok")),
                ("billing", Evaluation("yellow", "ok", (Reason("lag_yellow", "lag 31.0 s"),))),
                ("ledger", Evaluation("red", "ok", (Reason("lag_red", "lag 99.0 s"),))),
            ]
        )
        assert (group.state, group.visibility) == ("red", "ok")
        assert [(r.member, r.code) for r in group.reasons] == [
            ("billing", "lag_yellow"),
            ("ledger", "lag_red"),
        ]
        assert group.reasons[1].message == "ledger: lag 99.0 s"
        assert group.reasons[1].as_dict() == {
            "code": "lag_red",
            "message": "ledger: lag 99.0 s",
            "member": "ledger",
        }

    def test_lost_visibility_propagates(self):
        group = rules.rollup(
            [
                ("a", Evaluation("green", "ok")),
                ("b", Evaluation("yellow", "lost", (Reason("stale", "old"),))),
            ]
        )
        assert (group.state, group.visibility) == ("yellow", "lost")

    def test_all_green(self):
        group = rules.rollup([("a", Evaluation("green", "ok")), ("b", Evaluation("green", "ok"))])
        assert group == Evaluation("green", "ok", ())

    def test_empty_group_is_not_green(self):
        group = rules.rollup([])
        assert (group.state, group.visibility, group.codes) == ("red", "lost", ["no_members"])


def test_rules_module_is_pure():
    """No Django, no models, no I/O libraries: rules only see plain data."""
    import ast

    import inventory.rules as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "collections.abc", "dataclasses", "datetime"}
