"""End to end: an approved Snowflake switchover run by the real runner against the lab.

Request -> approvals -> start -> ``runner.run_execution`` (synchronously, as the django-q2 task
would) with the registry's SnowflakeConnector, whose factory is the lab's scripted connection.
The DR account ends up holding the primary group; the evidence carries the refreshed snapshot
(caught_up_to) and, since Snowflake does not fence the old primary, the potential loss window
from that snapshot to the promotion.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from audit.models import AuditEvent
from executions import runner, services
from executions.models import Execution

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_switchover_through_the_runner_moves_the_primary_group(
    snowflake_lab, make_resource, sites, approved
) -> None:
    lab = snowflake_lab["lab"]
    resource = make_resource(
        name="analytics-snowflake",
        platform="snowflake",
        connection=snowflake_lab["connection"],
        secret_ref="lab/snowflake",
        timeout_seconds=2.0,
    )
    request = approved(resource, "switchover", sites["west"])  # west is the DR site
    execution = services.execution_start(
        actor=request.operator, request=request, confirm=resource.name
    )

    assert runner.run_execution(execution.pk) == "succeeded"

    execution.refresh_from_db()
    assert execution.state == "succeeded", execution.state_reason
    steps = list(execution.steps.order_by("position").values_list("name", "state"))
    assert steps == [
        ("accounts_reachable", "succeeded"),
        ("target_is_secondary", "succeeded"),
        ("replication_not_broken", "succeeded"),
        ("final_refresh", "succeeded"),
        ("promote_target", "succeeded"),
        ("target_is_primary", "succeeded"),
        ("old_primary_is_secondary", "succeeded"),
    ]
    total = execution.evidence["total_seconds"]
    print(f"\n{execution.kind} through the runner: {total:.3f} s in total")
    assert total < 30
    found = execution.evidence["resources"]["analytics-snowflake"]
    assert found["outcome"] == "done"
    assert found["conclusion"]["code"] == "potential_loss", found
    evidence = found["evidence"]
    snapshot = datetime.fromisoformat(evidence["caught_up_to"])
    assert evidence["last_markers"]["snapshot"] == evidence["caught_up_to"]
    assert 0 <= evidence["potential_loss_window_seconds"] < 5
    assert snapshot >= execution.started_at

    assert lab.status()["primary_site"] == "dr"
    dr_account = snowflake_lab["connection"]["dr_account"]
    alters = [
        (s["account"], s["user"], s["sql"])
        for s in lab.received_statements()
        if s["sql"].startswith("ALTER")
    ]
    assert alters == [
        (dr_account, "BC_EXECUTE", "ALTER FAILOVER GROUP BC_FAILOVER REFRESH"),
        (dr_account, "BC_EXECUTE", "ALTER FAILOVER GROUP BC_FAILOVER PRIMARY"),
    ]
    passwords = [c["password"] for c in snowflake_lab["credentials"].values()]
    dumped = str(list(AuditEvent.objects.values_list("after", flat=True)))
    dumped += str(list(Execution.objects.values_list("evidence", "context")))
    assert not any(p in dumped for p in passwords)
