"""Request -> approvals -> start -> the real runner -> the real lab pair, through Django.

The runner is called in-process (nothing is queued on django-q2); the database is the test
store (SQLite by default, non-transactional tests: the audit table's triggers refuse Django's
flush on SQLite). The kill -9 test with a real worker process is in test_pg_worker_crash.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from audit.models import AuditEvent
from audit.selectors import verify_chain
from connectors.lab.postgres import PgPair
from executions import runner, services
from executions.models import ActiveExecutionLock, Execution

from .conftest import roles

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def resource(pg_resource: Callable[..., Any]) -> Any:
    return pg_resource()


def _steps(execution: Execution) -> list[tuple[str, str]]:
    return [(s.name, s.state) for s in execution.steps.order_by("position")]


def test_switchover_request_approved_started_and_run_swaps_roles(
    resource, approved, operator, sites, pair: PgPair, client_for
) -> None:
    request = approved(resource, "switchover", sites["west"])
    report = client_for(operator).post(f"/api/v1/requests/{request.pk}/prechecks/").json()
    assert report["ok"] and {r["name"] for r in report["results"]} >= {"lag_within_threshold"}
    response = client_for(operator).post(
        f"/api/v1/requests/{request.pk}/start/", {"confirm": "orders-pg"}, format="json"
    )
    assert response.status_code == 202, response.content
    execution = Execution.objects.get(pk=response.json()["execution"])

    outcome = runner.run_execution(execution.pk)
    execution.refresh_from_db()
    assert outcome == "succeeded", execution.state_reason
    assert all(state == "succeeded" for _, state in _steps(execution)), _steps(execution)
    assert roles(pair) == {"primary": True, "standby": False}  # really swapped
    assert not ActiveExecutionLock.objects.exists()

    found = execution.evidence["resources"]["orders-pg"]
    assert found["outcome"] == "done"
    assert found["conclusion"]["code"] == "caught_up"
    evidence = found["evidence"]
    assert evidence["caught_up_to"] and evidence["marker_before"] and evidence["marker_after"]
    assert 0 < evidence["write_unavailable_seconds"] < 5
    print(
        f"\nthrough the runner: writes unavailable {evidence['write_unavailable_seconds']} s, "
        f"total {execution.evidence['total_seconds']} s"
    )
    # Each step ran once; the execution account's password is nowhere in the record.
    started = AuditEvent.objects.filter(action="execution.step_started").count()
    assert started == execution.steps.count()
    password = resource_password(resource)
    assert password not in json.dumps(list(execution.steps.values("detail", "data")), default=str)
    assert password not in json.dumps(list(AuditEvent.objects.values("after")), default=str)
    assert verify_chain().ok


def resource_password(resource: Any) -> str:
    from connectors import secrets

    return secrets.resolve(resource.secret_ref, "execute")["password"]


def test_second_start_while_one_is_active_gets_409(
    resource, approved, operator, sites, pair: PgPair, client_for
) -> None:
    first = approved(resource, "switchover", sites["west"])
    # A drill does not move the primary, so no anti-flapping window applies to it.
    second = approved(resource, "drill", sites["west"])
    client = client_for(operator)
    ok = client.post(f"/api/v1/requests/{first.pk}/start/", {"confirm": "orders-pg"}, format="json")
    assert ok.status_code == 202
    clash = client.post(
        f"/api/v1/requests/{second.pk}/start/", {"confirm": "orders-pg"}, format="json"
    )
    assert clash.status_code == 409, clash.content
    with pytest.raises(services.ExecutionConflict):
        services.execution_start(actor=operator, request=second, confirm="orders-pg")
    second.refresh_from_db()
    assert second.state == "approved"
    # The first one runs to the end; the pair is swapped, then healed by the fixture.
    execution = Execution.objects.get(request=first)
    assert runner.run_execution(execution.pk) == "succeeded"


def test_failed_precheck_through_the_runner_changes_nothing(
    resource, approved, operator, sites, pair: PgPair
) -> None:
    pair.inject("pause_replay")
    request = approved(resource, "switchover", sites["west"])
    execution = services.execution_start(actor=operator, request=request, confirm="orders-pg")
    assert runner.run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert "standby_streaming failed (before any change)" in execution.state_reason
    states = dict(_steps(execution))
    assert states["fence_primary"] == states["promote"] == "skipped"
    assert roles(pair) == {"primary": False, "standby": True}


def test_failover_refused_through_the_runner_while_old_primary_writes(
    resource, approved, operator, sites, pair: PgPair
) -> None:
    """Invariant 10 through the runner: the guard stops the failover before any change."""
    request = approved(resource, "failover", sites["west"])
    execution = services.execution_start(actor=operator, request=request, confirm="orders-pg")
    assert runner.run_execution(execution.pk) == "failed"
    execution.refresh_from_db()
    assert "old_primary_not_writable failed (before any change)" in execution.state_reason
    assert dict(_steps(execution))["promote"] == "skipped"
    assert roles(pair) == {"primary": False, "standby": True}


def test_failover_override_is_recorded_and_promotes(
    resource, approved, operator, sites, pair: PgPair
) -> None:
    """The operator's explicit override (no policy needed for this guard) lets it proceed, and
    the audit log says so."""
    request = approved(resource, "failover", sites["west"])
    execution = services.execution_start(
        actor=operator,
        request=request,
        confirm="orders-pg",
        overrides=["old_primary_not_writable"],
        override_reason="primary host isolated by the network team; its clients are cut off",
    )
    assert runner.run_execution(execution.pk) == "succeeded"
    execution.refresh_from_db()
    assert dict(_steps(execution))["old_primary_not_writable"] == "overridden"
    assert AuditEvent.objects.filter(
        action="execution.precheck_overridden", object_id=str(execution.pk)
    ).exists()
    conclusion = execution.evidence["resources"]["orders-pg"]["conclusion"]
    assert conclusion["code"] in ("caught_up", "potential_loss")
    assert roles(pair)["standby"] is False
