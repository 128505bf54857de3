"""Which routes an event goes to. Pure functions over routes and event attributes (no writes).

A route matches an event when it is enabled, one of its kind patterns matches the kind, the
event's tier is among its tiers (or it lists none) and the event's environment among its
environments (or it lists none).

Invariant 8 (non-production alerts never page the production on-call route) is enforced three
times: ``Route.clean`` allows only ``["production"]`` on an on-call route, ``route_refusal``
refuses the pair here whatever the stored route says (a route changed behind the admin's back,
an event without an environment), and the worker asks ``route_refusal`` again just before it
sends, against the route as it is then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from notifications.choices import PRODUCTION
from notifications.models import Route


def kind_matches(pattern: str, kind: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return kind.startswith(pattern[:-1])  # "request.*" matches "request.created"
    return pattern == kind


def _selects(route: Route, *, kind: str, tier: int | None, environment: str | None) -> bool:
    if not any(kind_matches(p, kind) for p in route.kind_patterns):
        return False
    if route.tiers and tier not in route.tiers:
        return False
    return not (route.environments and environment not in route.environments)


def route_refusal(route: Route, *, environment: str | None) -> str:
    """Why ``route`` must not deliver an event of ``environment``; empty when it may."""
    if route.production_on_call and environment != PRODUCTION:
        shown = environment or "unknown"
        return f"refused: a {shown} event never goes to a production on-call route (invariant 8)"
    return ""


@dataclass(frozen=True)
class Match:
    route: Route
    refusal: str  # non-empty: recorded as a refused delivery, never sent


def match(
    routes: Iterable[Route], *, kind: str, tier: int | None, environment: str | None
) -> list[Match]:
    """Enabled routes selecting the event, each with its refusal (if any)."""
    found = []
    for route in routes:
        if route.enabled and _selects(route, kind=kind, tier=tier, environment=environment):
            found.append(Match(route, route_refusal(route, environment=environment)))
    return found


def active_routes() -> list[Route]:
    return list(Route.objects.filter(enabled=True).order_by("pk"))
