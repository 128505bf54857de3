"""Turning what the steps saw into the data-loss conclusion (detailed-design.md §5).

Steps put well-known keys into their ``data``; this module reads them and words the conclusion
conservatively: a replication marker proves completeness, a heartbeat only indicates it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Keys a connector's steps may report.
CAUGHT_UP_TO = "caught_up_to"  # marker the new primary had replayed when promoted
MARKER_BEFORE = "marker_before"  # primary marker before any change
MARKER_AFTER = "marker_after"  # marker on the new primary after the change
LOSS_WINDOW_SECONDS = "potential_loss_window_seconds"  # from the last markers seen
LAST_MARKERS = "last_markers"  # the markers the loss window was computed from
MARKER_UNAVAILABLE = "marker_unavailable"  # True when no marker could be read
HEARTBEAT_AT = "heartbeat_at"
WRITE_UNAVAILABLE_SECONDS = "write_unavailable_seconds"
RPO_MEASURED_SECONDS = "rpo_measured_seconds"
RTO_MEASURED_SECONDS = "rto_measured_seconds"


def collect(step_data: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the evidence keys reported by a resource's steps, later steps winning, except
    ``marker_before``: the first step to report it saw the target before any change, and a
    later step's reading (after writes were fenced, or after the change) must not replace it."""
    keys = {
        CAUGHT_UP_TO,
        MARKER_BEFORE,
        MARKER_AFTER,
        LOSS_WINDOW_SECONDS,
        LAST_MARKERS,
        MARKER_UNAVAILABLE,
        HEARTBEAT_AT,
        WRITE_UNAVAILABLE_SECONDS,
        RPO_MEASURED_SECONDS,
        RTO_MEASURED_SECONDS,
    }
    merged: dict[str, Any] = {}
    for data in step_data:
        for key, value in data.items():
            if key not in keys or value is None:
                continue
            if key == MARKER_BEFORE and MARKER_BEFORE in merged:
                continue
            merged[key] = value
    return merged


def conclusion(evidence: Mapping[str, Any], *, kind: str) -> dict[str, str]:
    """{code, text}: what can honestly be said about data loss for one resource."""
    if kind == "drill":
        rpo = evidence.get(RPO_MEASURED_SECONDS)
        if rpo is not None:
            return {
                "code": "drill_measured",
                "text": f"Drill: a marker written on the primary was replayed on the standby "
                f"in {rpo:.3f} s; roles were not changed.",
            }
        return {"code": "drill_unmeasured", "text": "Drill: the replay of the marker was not seen."}
    if evidence.get(CAUGHT_UP_TO) and not evidence.get(LOSS_WINDOW_SECONDS):
        text = f"Caught up to marker {evidence[CAUGHT_UP_TO]}"
        if evidence.get(HEARTBEAT_AT):
            text += f" / heartbeat {evidence[HEARTBEAT_AT]}"
        return {"code": "caught_up", "text": text + ": no committed data was lost."}
    if evidence.get(LOSS_WINDOW_SECONDS) is not None:
        markers = evidence.get(LAST_MARKERS) or {}
        seen = ", ".join(f"{k} {v}" for k, v in markers.items()) if markers else "none recorded"
        return {
            "code": "potential_loss",
            "text": f"Potential loss window up to {float(evidence[LOSS_WINDOW_SECONDS]):.1f} s "
            f"(last markers seen: {seen}).",
        }
    return {
        "code": "marker_unavailable",
        "text": "Marker unavailable: unable to prove completeness; see integrity checks.",
    }
