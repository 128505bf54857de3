"""Read-only checks for the Snowflake execution plans (``snowflake_plan``).

They look through ``SnowflakeConnector.observe`` (monitor role, both accounts in parallel), so a
check sees what the status board sees. Postchecks poll for up to ``SETTLE_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from connectors.contract import (
    ExecutionContext,
    Observation,
    Outcome,
    Replication,
    Role,
    SideObservation,
    StepResult,
    Target,
)
from inventory.connection_settings import with_defaults

if TYPE_CHECKING:
    from connectors.platforms.snowflake import SnowflakeConnector

DEFAULT_RPO_SECONDS = 60.0  # the inventory's default RPO target
SETTLE_SECONDS = 10.0


def rpo_target(target: Target) -> float:
    value = getattr(target, "rpo_target_seconds", None)
    return float(value) if value else DEFAULT_RPO_SECONDS


class Checks:
    """The read-only step functions, bound to the connector whose ``observe`` they use."""

    def __init__(self, connector: SnowflakeConnector) -> None:
        self.connector = connector

    @staticmethod
    def _sites(ctx: ExecutionContext) -> tuple[str, str]:
        return ctx.promote_site, "primary" if ctx.promote_site == "dr" else "dr"

    @staticmethod
    def _account(ctx: ExecutionContext, site: str) -> str:
        conn = with_defaults("snowflake", dict(ctx.target.connection))
        return str(conn[f"{site}_account"])

    @staticmethod
    def _group(ctx: ExecutionContext) -> str:
        return str(with_defaults("snowflake", dict(ctx.target.connection))["failover_group"])

    def _look(self, ctx: ExecutionContext) -> tuple[Observation, SideObservation, SideObservation]:
        obs = self.connector.observe(ctx.target)
        sides = {"primary": obs.primary, "dr": obs.dr}
        mine, other = self._sites(ctx)
        return obs, sides[mine], sides[other]

    # -- prechecks -----------------------------------------------------------------------------

    def accounts_reachable(self, ctx: ExecutionContext) -> StepResult:
        obs, mine, other = self._look(ctx)
        down = [f"{s.endpoint}: {s.outcome} {s.error}".strip() for s in (mine, other)
                if not s.reachable]  # fmt: skip
        ctx.state["roles_before"] = {"primary": str(obs.primary.role), "dr": str(obs.dr.role)}
        if down:
            return StepResult(ok=False, detail="not reachable: " + "; ".join(down))
        return StepResult(ok=True, detail="both accounts answer")

    def target_is_secondary(self, ctx: ExecutionContext) -> StepResult:
        obs, mine, other = self._look(ctx)
        ok = mine.role == Role.STANDBY and other.role == Role.PRIMARY
        detail = f"{mine.endpoint} holds the {mine.role} group, {other.endpoint} the {other.role}"
        if mine.role == Role.PRIMARY:
            detail += ": the target already holds the primary"
        # Snowflake has no position on the primary: the secondary's snapshot is informative
        # only, not the evidence's marker_before.
        return StepResult(ok=ok, detail=detail, data={"last_refresh_snapshot": obs.dr_marker})

    def replication_not_broken(self, ctx: ExecutionContext) -> StepResult:
        obs, _, _ = self._look(ctx)
        ok = obs.replication not in (Replication.BROKEN, Replication.UNKNOWN)
        notes = "; ".join(obs.notes)
        return StepResult(
            ok=ok,
            detail=f"replication {obs.replication}" + (f" ({notes})" if notes else ""),
            data={"lag_seconds": obs.lag_seconds},
        )

    def target_reachable(self, ctx: ExecutionContext) -> StepResult:
        _, mine, _ = self._look(ctx)
        if not mine.reachable:
            return StepResult(ok=False, detail=f"{mine.endpoint}: {mine.outcome} {mine.error}")
        if mine.role == Role.PRIMARY:
            return StepResult(ok=False, detail=f"{mine.endpoint} already holds the primary group")
        return StepResult(ok=mine.role == Role.STANDBY, detail=f"{mine.endpoint} is {mine.role}")

    def old_primary_not_writable(self, ctx: ExecutionContext) -> StepResult:
        """Invariant 10: a primary group that still answers as primary still takes writes."""
        _, mine, other = self._look(ctx)
        refuse = {"overridable": True, "override_needs_policy": False}
        if other.outcome in (Outcome.CONNECTION_ERROR, Outcome.TIMEOUT):
            return StepResult(
                ok=True, detail=f"{other.endpoint} is not reachable ({other.outcome})"
            )
        if not other.reachable:
            return StepResult(
                ok=False,
                detail=f"{other.endpoint} answers but cannot be read ({other.outcome}): cannot "
                "tell whether its group still takes writes",
                **refuse,
            )
        if other.role == Role.PRIMARY:
            return StepResult(
                ok=False,
                detail=f"{other.endpoint} is reachable and its group is still primary: it takes "
                f"writes. Promoting {mine.endpoint} now loses what is written there after the "
                "last refresh; use a switchover, or override explicitly (recorded).",
                data={"old_primary": "primary and reachable"},
                **refuse,
            )
        return StepResult(ok=True, detail=f"{other.endpoint} holds the {other.role} group")

    def estimate_loss_window(self, ctx: ExecutionContext) -> StepResult:
        obs, _, _ = self._look(ctx)
        if not obs.dr_marker:
            return StepResult(
                ok=True,
                detail="marker unavailable: no completed refresh in the history window",
                data={"marker_unavailable": True},
            )
        window = round(obs.lag_seconds or 0.0, 3)
        return StepResult(
            ok=True,
            detail=f"potential loss window up to {window:g} s (last refresh snapshot "
            f"{obs.dr_marker})",
            data={
                "potential_loss_window_seconds": window,
                "last_markers": {"last_refresh_snapshot": obs.dr_marker},
            },
        )

    def measure_freshness(self, ctx: ExecutionContext) -> StepResult:
        obs, mine, _ = self._look(ctx)
        if mine.role != Role.STANDBY or obs.lag_seconds is None:
            return StepResult(
                ok=False,
                detail=f"no completed refresh to date the secondary in {mine.endpoint}",
                data={"marker_unavailable": True},
            )
        ctx.state["rpo_measured_seconds"] = round(obs.lag_seconds, 3)
        return StepResult(
            ok=True,
            detail=f"the secondary holds the primary as of {obs.dr_marker}: "
            f"{obs.lag_seconds:.1f} s ago",
            data={"rpo_measured_seconds": round(obs.lag_seconds, 3), "marker_after": obs.dr_marker},
        )

    # -- postchecks ----------------------------------------------------------------------------

    def _settle(
        self, ctx: ExecutionContext, good: Callable[[SideObservation, SideObservation], bool]
    ) -> tuple[bool, SideObservation, SideObservation]:
        deadline = time.time() + SETTLE_SECONDS
        while True:
            _, mine, other = self._look(ctx)
            if good(mine, other) or time.time() >= deadline:
                return good(mine, other), mine, other
            time.sleep(0.5)

    def target_is_primary(self, ctx: ExecutionContext) -> StepResult:
        ok, mine, _ = self._settle(ctx, lambda m, o: m.role == Role.PRIMARY)
        return StepResult(ok=ok, detail=f"{mine.endpoint} holds the {mine.role} group")

    def old_primary_is_secondary(self, ctx: ExecutionContext) -> StepResult:
        ok, _, other = self._settle(
            ctx, lambda m, o: o.role == Role.STANDBY or (ctx.kind == "failover" and not o.reachable)
        )
        if not other.reachable and ctx.kind == "failover":
            return StepResult(
                ok=True,
                detail=f"{other.endpoint} is not reachable; its group becomes secondary when the "
                "account returns (check before failing back)",
            )
        return StepResult(ok=ok, detail=f"{other.endpoint} holds the {other.role} group")

    def rpo_within_target(self, ctx: ExecutionContext) -> StepResult:
        measured, limit = ctx.state.get("rpo_measured_seconds"), rpo_target(ctx.target)
        if measured is None:
            return StepResult(ok=False, detail="no measurement recorded")
        ok = float(measured) <= limit
        return StepResult(
            ok=ok,
            detail=f"measured {measured:g} s {'≤' if ok else '>'} RPO target {limit:g} s",
            data={"rpo_measured_seconds": measured, "rpo_target_seconds": limit},
        )

    def roles_unchanged(self, ctx: ExecutionContext) -> StepResult:
        obs, _, _ = self._look(ctx)
        now = {"primary": str(obs.primary.role), "dr": str(obs.dr.role)}
        before = ctx.state.get("roles_before")
        return StepResult(ok=before == now, detail=f"roles before {before}, now {now}")
