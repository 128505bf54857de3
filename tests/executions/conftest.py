"""Fixtures for runner tests: an approved request and a scripted connector.

The scripted connector is a test double of the connector contract (not of a database): it
records which steps ran and lets a test decide each step's result, so the runner's own rules
(order, stop on failure, overrides, timeouts, crash recovery) are tested exactly. The platform
connectors' real plans are tested against the lab in tests/integration/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.contract import (
    Capability,
    Connector,
    ExecutionContext,
    Observation,
    Phase,
    PlanStep,
    StepResult,
    Support,
    Target,
    Verified,
)


@dataclass
class Script:
    """What each step should do, by name: a StepResult, an exception, or a sleep."""

    results: dict[str, StepResult] = field(default_factory=dict)
    raises: dict[str, BaseException] = field(default_factory=dict)
    sleeps: dict[str, float] = field(default_factory=dict)
    verify: dict[str, Verified] = field(default_factory=dict)
    ran: list[tuple[str, str]] = field(default_factory=list)  # (target name, step name)
    credentials_seen: list[str] = field(default_factory=list)
    supported: dict[str, Support] = field(default_factory=dict)


class ScriptedConnector(Connector):
    platform = "postgres"

    def __init__(self, script: Script) -> None:
        self.script = script

    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        names = (
            "monitor",
            "replication_marker",
            "heartbeat",
            "switchover",
            "failover",
            "failback",
            "drill",
        )
        return {n: Capability(self.script.supported.get(n, Support.YES), "scripted") for n in names}

    def observe(self, target: Target) -> Observation:  # pragma: no cover - not used here
        raise NotImplementedError

    def _step(self, name: str, phase: Phase, changes: bool, idempotent: bool = True) -> PlanStep:
        script = self.script

        def run(ctx: ExecutionContext) -> StepResult:
            script.ran.append((ctx.target.name, name))
            if changes:
                script.credentials_seen.append(dict(ctx.target.credentials("execute"))["username"])
            if name in script.sleeps:
                time.sleep(script.sleeps[name])
            if name in script.raises:
                raise script.raises[name]
            ctx.state[f"{name}_done"] = True
            return script.results.get(
                name, StepResult(ok=True, detail=f"{name} ok", data={"marker_before": "0/1"})
            )

        def verify(ctx: ExecutionContext) -> Verified:
            return script.verify.get(name, Verified.UNKNOWN)

        return PlanStep(
            name=name,
            phase=phase,
            run=run,
            changes_state=changes,
            idempotent=idempotent,
            verify=verify if changes else None,
            timeout_seconds=1.0,
        )

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        return [
            self._step("reachable", Phase.PRECHECK, False),
            self._step("lag_ok", Phase.PRECHECK, False),
            self._step("fence", Phase.STEP, True, idempotent=True),
            self._step("promote", Phase.STEP, True, idempotent=False),
            self._step("roles_swapped", Phase.POSTCHECK, False),
        ]


@pytest.fixture
def script(monkeypatch, tmp_path, settings) -> Script:
    import json

    from executions import planning

    s = Script()
    monkeypatch.setattr(planning, "get_connector", lambda platform: ScriptedConnector(s))
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(
        json.dumps(
            {
                "lab/postgres": {
                    "monitor": {"username": "mon", "password": "m-SECRET-1"},
                    "execute": {"username": "exe", "password": "x-SECRET-2"},
                }
            }
        )
    )
    settings.BC_SECRETS_FILE = str(secrets_file)
    monkeypatch.setattr("executions.services.enqueue", lambda execution_id: None)
    return s


@pytest.fixture
def operator(make_user) -> Any:
    return make_user("operator", username="op1")


@pytest.fixture
def approved_request(operator, approve, make_resource, sites) -> Callable[..., Any]:
    from approvals import services as approvals

    def make(
        resource: Any | None = None, group: Any | None = None, kind: str = "switchover"
    ) -> Any:
        if resource is None and group is None:
            resource = make_resource()
        request = approvals.request_create(
            actor=operator,
            kind=kind,
            target_site=sites["west"],
            reason="planned test",
            resource=resource,
            group=group,
            change_ticket="CHG1234567",
        )
        return approve(request)

    return make
