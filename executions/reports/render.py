"""Rendering the reports: printable HTML pages (Django templates, autoescaped) and the readiness
CSV (spreadsheet-safe cells from ``audit.exports``).

Reports are assembled as plain data first (``evidence``, ``readiness``); rendering only adds
text forms of nested values, so the JSON and the HTML never disagree about content.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.template.loader import render_to_string

from audit.exports import csv_cell
from executions.reports.timeline import CATEGORIES


def _text(value: Any) -> str:
    """Nested data as compact, readable JSON text (the template escapes it)."""
    if value is None or value == {} or value == []:
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def evidence_html(report: dict[str, Any]) -> str:
    steps = [{**s, "data_text": _text(s["data"])} for s in report["steps"]]
    approvals = [
        {
            **a,
            "readiness_rows": [
                {**r, "reasons_text": ", ".join(map(str, r.get("reasons") or []))}
                for r in a["readiness"]
                if isinstance(r, dict)
            ],
        }
        for a in report["approvals"]
    ]
    resources = [
        {
            **r,
            "markers_rows": [
                (k, _text(v) if isinstance(v, dict) else v)
                for k, v in r["markers"].items()
                if v not in (None, "", {})
            ],
        }
        for r in report["resources"]
    ]
    context = {
        "r": report,
        "steps": steps,
        "approvals": approvals,
        "resources": resources,
        "policy_rows": sorted(
            (k, v if isinstance(v, str) else _text(v))
            for k, v in report["policy"]["snapshot"].items()
        ),
        "checkpoint_text": _text(report["audit"]["checkpoint"]),
    }
    return render_to_string("reports/evidence.html", context)


def readiness_html(report: dict[str, Any]) -> str:
    def cells(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "percent_cells": [row["percent"][c] for c in CATEGORIES]}

    context = {
        "r": report,
        "categories": CATEGORIES,
        "tiers": [cells(t) for t in report["tiers"]],
        "resources": [cells(x) for x in report["resources"]],
    }
    return render_to_string("reports/readiness.html", context)


READINESS_COLUMNS = (
    "scope",
    "name",
    "tier",
    "environment",
    "counted_seconds",
    *(f"{c}_seconds" for c in CATEGORIES),
    *(f"{c}_percent" for c in CATEGORIES),
    "unobserved_seconds",
    "rpo_breaches",
    "rpo_breach_seconds",
    "max_lag_seconds",
    "drills_run",
    "drills_passed",
    "drills_failed",
    "drill_overdue",
)


def readiness_csv(report: dict[str, Any]) -> str:
    """One row per resource, then one per tier (``scope`` says which), RFC 4180."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(READINESS_COLUMNS)
    for r in report["resources"]:
        breaches = r["rpo_breaches"]
        writer.writerow(
            csv_cell(v)
            for v in (
                "resource",
                r["resource"],
                r["tier"],
                r["environment"],
                r["counted_seconds"],
                *(r["seconds"][c] for c in CATEGORIES),
                *(r["percent"][c] for c in CATEGORIES),
                r["unobserved_seconds"],
                breaches["count"],
                breaches["seconds"],
                breaches["max_lag_seconds"],
                r["drills"]["run"],
                r["drills"]["passed"],
                r["drills"]["failed"],
                r["drill_overdue"] or "",
            )
        )
    for t in report["tiers"]:
        writer.writerow(
            csv_cell(v)
            for v in (
                "tier",
                f"tier {t['tier']}",
                t["tier"],
                "",
                t["counted_seconds"],
                *(t["seconds"][c] for c in CATEGORIES),
                *(t["percent"][c] for c in CATEGORIES),
                t["unobserved_seconds"],
                t["rpo_breaches"],
                t["rpo_breach_seconds"],
                None,
                t["drills_run"],
                t["drills_passed"],
                t["drills_failed"],
                t["drill_overdue"],
            )
        )
    return out.getvalue()
