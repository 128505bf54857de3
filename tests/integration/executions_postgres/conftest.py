"""Fixtures for PostgreSQL executions against the real lab pair (no mocks).

One pair per session (its own, named ``exec``), healed after every test that uses it, so each
test starts from the configured roles (primary site primary, DR site streaming) and leaves them.
``run_plan`` walks a connector plan the way the runner does (in order, stop at the first
failure, an overridable precheck passes only when named in ``overrides``) without Django; the
Django tests use the real runner.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.contract import (
    ExecutionContext,
    HeartbeatConfig,
    Phase,
    PlanStep,
    StepResult,
    Target,
)
from connectors.lab.pg_server import PG_BIN
from connectors.lab.postgres import PgPair
from connectors.platforms.postgres import PostgresConnector

TEST_DEADLINE = 180  # a rewind or rebuild under load takes seconds; nothing may hang for ever
connector = PostgresConnector()


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test exceeded {TEST_DEADLINE} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_DEADLINE)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def exec_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    pair = PgPair(tmp_path_factory.mktemp("pgexec") / "pair", name="exec")
    try:
        info = pair.up()
        yield {"pair": pair, **info}
    finally:
        pair.destroy()


@pytest.fixture
def pair(exec_lab: dict[str, Any]) -> Iterator[PgPair]:
    yield exec_lab["pair"]
    exec_lab["pair"].inject("heal")


class Credentials:
    """The lab's accounts, recording which purposes were asked for (invariant 6)."""

    def __init__(self, accounts: dict[str, dict[str, str]]) -> None:
        self.accounts = accounts
        self.asked: list[str] = []

    def __call__(self, purpose: str) -> dict[str, str]:
        self.asked.append(purpose)
        return self.accounts[purpose]


@pytest.fixture
def target_for(exec_lab: dict[str, Any], pair: PgPair) -> Callable[..., Target]:
    """``target_for(host_actions=..., **connection)``: the lab target, settings overridable."""

    def make(**connection: Any) -> Target:
        return Target(
            name="orders-pg",
            platform="postgres",
            connection={**exec_lab["connection"], **connection},
            credentials=Credentials(exec_lab["credentials"]),
            heartbeat=HeartbeatConfig(**exec_lab["heartbeat"]),
            timeout_seconds=3.0,
        )

    return make


@pytest.fixture
def target(target_for: Callable[..., Target]) -> Target:
    return target_for()


@dataclass
class Ran:
    step: PlanStep
    result: StepResult
    seconds: float
    overridden: bool = False


@dataclass
class PlanRun:
    ctx: ExecutionContext
    ran: list[Ran] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.ran) and all(r.result.ok or r.overridden for r in self.ran)

    @property
    def names(self) -> list[str]:
        return [r.step.name for r in self.ran]

    def result(self, name: str) -> StepResult:
        return next(r.result for r in self.ran if r.step.name == name)

    def data(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for r in self.ran:
            merged.update(r.result.data)
        return merged

    def report(self) -> str:
        return "\n".join(
            f"{r.step.name:28} {'ok ' if r.result.ok else 'FAIL'} {r.seconds:6.3f}s "
            f"{r.result.detail[:160]}"
            for r in self.ran
        )


def run_plan(
    target: Target,
    kind: str,
    promote_site: str,
    *,
    overrides: frozenset[str] = frozenset(),
    until: str | None = None,
) -> PlanRun:
    """Run ``connector.plan(kind, target)`` step by step; stop after ``until`` if given."""
    ctx = ExecutionContext(
        target=target, kind=kind, promote_site=promote_site, overrides=overrides, log=lambda m: None
    )
    run = PlanRun(ctx)
    for step in connector.plan(kind, target):
        began = time.monotonic()
        result = step.run(ctx)
        json.dumps(ctx.state)  # the runner persists it: it must stay JSON-safe
        overridden = (
            not result.ok
            and step.phase == Phase.PRECHECK
            and result.overridable
            and step.name in overrides
        )
        run.ran.append(Ran(step, result, time.monotonic() - began, overridden))
        if (not result.ok and not overridden) or step.name == until:
            break
    print(f"\n{kind} -> {promote_site}:\n{run.report()}")
    return run


def roles(pair: PgPair) -> dict[str, bool | None]:
    """Configured node -> in_recovery (None: not answering)."""
    return {label: node["in_recovery"] for label, node in pair.status()["nodes"].items()}


# -- Django: a resource for the lab pair, an operator, approved requests ------------------------


@pytest.fixture
def pg_resource(
    exec_lab: dict[str, Any], pair: PgPair, make_resource, tmp_path, settings, monkeypatch
) -> Callable[..., Any]:
    """``pg_resource(**connection)``: the lab pair as a Resource, its credentials in a temporary
    BC_SECRETS_FILE under ``lab/pg-exec``; nothing is queued on django-q2."""
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"lab/pg-exec": exec_lab["credentials"]}))
    settings.BC_SECRETS_FILE = str(secrets_file)
    monkeypatch.setattr("executions.services.enqueue", lambda execution_id: None)

    def make(**connection: Any) -> Any:
        return make_resource(
            name="orders-pg",
            connection={**exec_lab["connection"], **connection},
            secret_ref="lab/pg-exec",
            heartbeat_table="bc_heartbeat",
            timeout_seconds=3.0,
        )

    return make


@pytest.fixture
def operator(make_user) -> Any:
    return make_user("operator", username="op-pg")


@pytest.fixture
def approved(operator, approve) -> Callable[..., Any]:
    """``approved(resource, kind, target_site)``: a request approved by IT and business."""
    from approvals import services as approvals

    def make(resource: Any, kind: str, target_site: Any) -> Any:
        request = approvals.request_create(
            actor=operator,
            kind=kind,
            target_site=target_site,
            reason="planned DR exercise",
            resource=resource,
            change_ticket="CHG0005678",
        )
        approve(request)
        return request

    return make
