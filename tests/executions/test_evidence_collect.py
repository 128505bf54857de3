"""How the evidence of one resource is merged from its steps' data."""

from __future__ import annotations

from executions import evidence


def test_marker_before_is_the_first_reading_and_other_keys_the_last() -> None:
    merged = evidence.collect(
        [
            {"marker_before": "0/100", "caught_up_to": None},
            {"marker_before": "0/180", "caught_up_to": "0/180", "unrelated": 1},
            {"marker_after": "0/200", "caught_up_to": "0/190"},
        ]
    )
    assert merged == {"marker_before": "0/100", "caught_up_to": "0/190", "marker_after": "0/200"}


def test_a_missing_first_reading_takes_the_next_one() -> None:
    merged = evidence.collect([{"marker_before": None}, {"marker_before": "0/180"}])
    assert merged == {"marker_before": "0/180"}
