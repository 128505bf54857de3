"""Alerts about a resource's status: open, switch and resolve, deduplicated per resource.

Monitoring calls ``notify("resource.status_changed", ...)`` whenever a resource's state or
visibility changes (``inventory.status_services``). From the new status this module derives the
resource's *condition*:

- ``visibility_lost`` while the target cannot be seen (whatever the state),
- ``red`` while it is seen and red,
- none otherwise (green, or yellow while seen).

Only a change of condition makes an event: ``status.red`` or ``status.visibility_lost`` when a
condition opens (or replaces another), ``status.recovered`` when it closes. Moving between
states with the same condition (red+lost to yellow+lost, for instance) sends nothing, and since
monitoring only reports changes, an open condition is never re-sent on each collection cycle.
The open condition is one ``Alert`` row per resource, locked while it changes, so two workers
reporting on one resource cannot both open it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifications.choices import RED, VISIBILITY_LOST
from notifications.models import Alert

STATUS_CHANGED = "resource.status_changed"
RECOVERED = "status.recovered"


def condition_of(view: Mapping[str, Any] | None) -> str:
    view = view or {}
    if view.get("visibility") == "lost":
        return VISIBILITY_LOST
    if view.get("state") == "red":
        return RED
    return ""


def dedup_key(resource_id: int, condition: str) -> str:
    """One PagerDuty incident per resource and condition; ``resolve`` reuses the key."""
    return f"bcservice/resource/{resource_id}/{condition}"


@dataclass(frozen=True)
class Change:
    kind: str  # status.red | status.visibility_lost | status.recovered
    opens: str  # dedup key of the condition that opens ("" on recovery)
    closes: str  # dedup key of the condition that ends ("" when none was open)
    closed_event_id: int | None  # the event that opened the condition now ending


def apply(resource_id: int, after: Mapping[str, Any] | None, now: datetime) -> Change | None:
    """Move the resource's alert to the condition of ``after``; None when nothing changes.

    Call inside a transaction; the caller sets ``opening_event`` once the event exists.
    """
    Alert.objects.get_or_create(resource_id=resource_id)
    alert = Alert.objects.select_for_update().get(resource_id=resource_id)
    new = condition_of(after)
    if new == alert.condition:
        return None  # deduplicated: this condition is already open (or nothing is)
    closes, closed_event = alert.dedup_key, alert.opening_event_id
    if new:
        alert.condition, alert.dedup_key, alert.opened_at = new, dedup_key(resource_id, new), now
        change = Change(f"status.{new}", alert.dedup_key, closes, closed_event)
    else:
        alert.condition, alert.dedup_key, alert.opened_at = "", "", None
        change = Change(RECOVERED, "", closes, closed_event)
    alert.opening_event = None
    alert.save()
    return change


def set_opening_event(resource_id: int, event_id: int) -> None:
    Alert.objects.filter(resource_id=resource_id).update(opening_event_id=event_id)


def subject_for(change: Change, payload: Mapping[str, Any]) -> str:
    name = payload.get("resource") or "resource"
    after = payload.get("after") or {}
    if change.kind == RECOVERED:
        return (
            f"{name}: recovered ({after.get('state', '?')}, visibility {after.get('visibility')})"
        )
    if change.kind == f"status.{VISIBILITY_LOST}":
        return f"{name}: loss of visibility, DR readiness cannot be shown"
    return f"{name}: DR readiness RED"


def reason_lines(payload: Mapping[str, Any]) -> list[str]:
    """The people-facing reasons of the new status (rule messages; they carry no secret)."""
    reasons = (payload.get("after") or {}).get("reasons") or []
    lines = []
    for reason in reasons:
        if isinstance(reason, Mapping):
            lines.append(str(reason.get("message") or reason.get("code") or ""))
        else:
            lines.append(str(reason))
    return [line for line in lines if line]
