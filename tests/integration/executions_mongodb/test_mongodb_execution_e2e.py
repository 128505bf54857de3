"""End to end: an approved MongoDB switchover run by the real runner against the simulator.

Request -> approvals -> start -> ``runner.run_execution`` (synchronously, as the django-q2 task
would) with the registry's MongoConnector, whose steps talk pymongo to the simulated set. The
roles really swap, the evidence says "caught up", and the execute account sent the commands.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from connectors.contract import Role
from connectors.platforms.mongodb import MongoConnector
from executions import runner, services
from executions.models import Execution

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_switchover_through_the_runner_swaps_roles_with_caught_up_evidence(
    mongo_set, make_resource, sites, approved
) -> None:
    sim = mongo_set["sim"]
    resource = make_resource(
        name="orders-mongo",
        platform="mongodb",
        connection=mongo_set["connection"],
        secret_ref="lab/mongodb",
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
    assert [state for _, state in steps] == ["succeeded"] * 11
    total = execution.evidence["total_seconds"]
    print(f"\n{execution.kind} through the runner: {total:.3f} s in total")
    assert total < 30
    found = execution.evidence["resources"]["orders-mongo"]
    assert found["outcome"] == "done"
    assert found["conclusion"]["code"] == "caught_up", found
    assert found["evidence"]["write_unavailable_seconds"] < 2.0
    assert found["evidence"]["marker_before"] and found["evidence"]["marker_after"]

    # The roles really swapped.
    target = MongoConnector().observe(_monitor_target(mongo_set, resource))
    assert (target.dr.role, target.primary.role) == (Role.PRIMARY, Role.STANDBY)
    # The execute account sent the state-changing commands; the monitor account only read.
    execute_user = mongo_set["credentials"]["execute"]["username"]
    changes = [
        (c["command"], c["user"])
        for c in sim.received_commands()
        if c["command"] in ("replSetReconfig", "replSetFreeze", "replSetStepDown")
    ]
    assert [c for c, _ in changes] == [
        "replSetReconfig",
        "replSetFreeze",
        "replSetStepDown",
        "replSetReconfig",
    ]
    assert {u for _, u in changes} == {execute_user}
    # No password in the record.
    passwords = [c["password"] for c in mongo_set["credentials"].values()]
    dumped = str(list(AuditEvent.objects.values_list("after", flat=True)))
    dumped += str(list(Execution.objects.values_list("evidence", "context")))
    assert not any(p in dumped for p in passwords)


def _monitor_target(mongo_set, resource):
    from connectors.contract import Target

    return Target(
        name=resource.name,
        platform="mongodb",
        connection=mongo_set["connection"],
        credentials=lambda purpose: mongo_set["credentials"]["monitor"],
        timeout_seconds=2.0,
    )
