"""End to end through the real runner: an approved SQL Server switchover runs the
MssqlConnector's plan against the AG simulator, the roles really swap, and the execution's
evidence says the new primary caught up (no committed data lost)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from audit.models import AuditEvent
from audit.selectors import verify_chain
from connectors.contract import Role, Target
from connectors.platforms.mssql import MssqlConnector
from executions import runner, services

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

FAILOVER = "ALTER AVAILABILITY GROUP [bc-ag] FAILOVER;"


def test_approved_switchover_runs_through_the_runner(
    mssql_lab, mssql_resource, approved, monkeypatch
) -> None:
    monkeypatch.setattr("executions.services.enqueue", lambda execution_id: None)
    # The runner's heartbeat thread writes through its own connection, which on the SQLite test
    # database meets the test's transaction ("database table is locked", logged as a missed
    # beat). Claims and heartbeats are tested in tests/executions; this run needs none.
    monkeypatch.setattr(runner, "HEARTBEAT_EVERY", timedelta(minutes=5))
    sim = mssql_lab["sim"]
    request, operator = approved(mssql_resource, "switchover", "west")  # west: the DR site
    execution = services.execution_start(
        actor=operator, request=request, confirm=mssql_resource.name
    )
    since = len(sim.statement_log())

    assert runner.run_execution(execution.pk) == "succeeded"

    execution.refresh_from_db()
    request.refresh_from_db()
    assert execution.state == "succeeded" and request.state == "succeeded"
    steps = list(execution.steps.order_by("position"))
    assert [(s.name, s.state) for s in steps] == [
        (name, "succeeded")
        for name in (
            "replicas_reachable",
            "target_synchronized",
            "lag_near_zero",
            "ag_healthy",
            "planned_failover",
            "roles_swapped",
            "old_primary_synchronized",
        )
    ]
    # One state-changing statement, on the DR replica, with the execution login.
    sent = [
        (e["replica"], e["login"], " ".join(e["sql"].split()))
        for e in sim.statement_log()[since:]
        if e["sql"].lstrip().upper().startswith("ALTER")
    ]
    assert sent == [("SQLDR", "bc_execute", FAILOVER)]
    # The roles really swapped.
    creds = mssql_lab["credentials"]
    obs = MssqlConnector().observe(
        Target("orders-ag", "mssql", mssql_lab["connection"], lambda p: creds["monitor"])
    )
    assert (obs.primary.role, obs.dr.role) == (Role.STANDBY, Role.PRIMARY)
    # Evidence: caught up to the marker, write-unavailable window measured.
    found = execution.evidence["resources"]["orders-ag"]
    assert found["outcome"] == "done"
    assert found["conclusion"]["code"] == "caught_up", found
    step = next(s for s in steps if s.name == "planned_failover")
    assert found["evidence"]["caught_up_to"] == step.data["caught_up_to"]
    assert int(found["evidence"]["caught_up_to"]) >= int(found["evidence"]["marker_before"])
    assert 0 < found["evidence"]["write_unavailable_seconds"] < 1.0
    print(
        f"switchover through the runner: {execution.evidence['total_seconds']} s, writes "
        f"unavailable {found['evidence']['write_unavailable_seconds']} s"
    )
    # No secret reached the steps or the audit log; the chain verifies.
    stored = json.dumps(
        [[s.detail, s.data] for s in steps]
        + list(AuditEvent.objects.values_list("after", flat=True)),
        default=str,
    )
    for login in creds.values():
        assert login["password"] not in stored
    assert verify_chain().ok
