"""Running MssqlConnector plans step by step against the AG simulator, without Django.

Each test builds its own ``ExecutionContext`` (as the runner would) and runs the plan's steps in
order; the simulator records every batch with the replica and the login that sent it, so the
tests can say exactly which statements a plan sent, where, and as whom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.contract import ExecutionContext, PlanStep, StepResult, Target
from connectors.lab.mssql_sim import MssqlAgSimulator
from connectors.platforms.mssql import MssqlConnector

from .conftest import TIMEOUT_SECONDS

connector = MssqlConnector()


@dataclass
class Credentials:
    """The target's credentials callable; remembers which step asked for which purpose.
    ``execute_as`` picks the lab login handed out for "execute" (the monitor one, to test
    that it cannot fail over)."""

    lab: dict[str, Any]
    execute_as: str = "execute"
    step: str | None = None
    fetched: list[tuple[str | None, str]] = field(default_factory=list)

    def __call__(self, purpose: str) -> dict[str, str]:
        self.fetched.append((self.step, purpose))
        which = self.execute_as if purpose == "execute" else purpose
        return dict(self.lab["credentials"][which])


def context(
    lab: dict[str, Any],
    kind: str,
    promote_site: str,
    *,
    credentials: Credentials | None = None,
    overrides: tuple[str, ...] = (),
    state: dict[str, Any] | None = None,
    rpo_target_seconds: float | None = None,
    **connection: Any,
) -> ExecutionContext:
    target = Target(
        name="orders-ag",
        platform="mssql",
        connection={**lab["connection"], **connection},
        credentials=credentials or Credentials(lab),
        timeout_seconds=TIMEOUT_SECONDS,
        rpo_target_seconds=rpo_target_seconds,
    )
    return ExecutionContext(
        target=target,
        kind=kind,
        promote_site=promote_site,
        overrides=frozenset(overrides),
        state=dict(state or {}),
        log=lambda message: None,
    )


def plan_of(ctx: ExecutionContext) -> dict[str, PlanStep]:
    return {step.name: step for step in connector.plan(ctx.kind, ctx.target)}


def run_plan(ctx: ExecutionContext, *, until: str | None = None) -> dict[str, StepResult]:
    """Run the steps in order, as the runner does: stop at the first failure that the
    operator has not overridden, or after ``until``."""
    results: dict[str, StepResult] = {}
    for step in connector.plan(ctx.kind, ctx.target):
        if isinstance(ctx.target.credentials, Credentials):
            ctx.target.credentials.step = step.name
        result = step.run(ctx)
        results[step.name] = result
        overridden = result.overridable and step.name in ctx.overrides
        if (not result.ok and not overridden) or step.name == until:
            break
    return results


def mark(sim: MssqlAgSimulator) -> int:
    return len(sim.statement_log())


def writes(sim: MssqlAgSimulator, since: int = 0) -> list[tuple[str, str, str]]:
    """(replica, login, statement) of every state-changing batch received since ``since``."""
    return [
        (entry["replica"], entry["login"], " ".join(entry["sql"].split()))
        for entry in sim.statement_log()[since:]
        if entry["sql"].lstrip().upper().startswith("ALTER")
    ]


def logins_by_replica(sim: MssqlAgSimulator, since: int = 0) -> set[tuple[str, str]]:
    return {(entry["replica"], entry["login"]) for entry in sim.statement_log()[since:]}


def roles(lab: dict[str, Any]) -> tuple[str, str]:
    """(role at the primary site, role at the DR site) as observe() reports them."""
    obs = connector.observe(
        Target(
            name="orders-ag",
            platform="mssql",
            connection=lab["connection"],
            credentials=lambda purpose: lab["credentials"]["monitor"],
            timeout_seconds=TIMEOUT_SECONDS,
        )
    )
    assert obs.primary.reachable and obs.dr.reachable, (obs.primary.error, obs.dr.error)
    return obs.primary.role.value, obs.dr.role.value
