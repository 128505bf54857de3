"""kill -9 of a real worker process in the middle of a switchover's rejoin, then recovery.

Needs PostgreSQL as the state store (``postgres_only``): the worker is a separate process and
must see the committed execution. Run with, e.g.::

    scripts/pg_cluster.sh start /tmp/bc-pg-exec 55450
    DATABASE_URL=postgres://postgres@127.0.0.1:55450/bcservice \\
        .venv/bin/pytest tests/integration/executions_postgres/test_pg_worker_crash.py
    scripts/pg_cluster.sh stop /tmp/bc-pg-exec

The rejoin host action is made to wait (``--hold-while FILE``) right after it stopped the old
primary, so the kill lands at a known, awkward point: the old primary is down, the new one
promoted. Two endings are checked: the orphaned host action finishes by itself (the restarted
runner verifies the step as done), or it dies with the worker (the runner verifies "not done"
and, the step being idempotent, runs it again). Either way promote ran exactly once.
"""

from __future__ import annotations

import copy
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from audit.models import AuditEvent
from connectors.lab.postgres import PgPair
from executions import recovery, runner, services
from executions.models import ExecutionStep

from .conftest import roles

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

WORKER = (
    "import django; django.setup(); "
    "from executions.tasks import run_execution; import sys; "
    "print(run_execution(int(sys.argv[1])), flush=True)"
)


def _state_store_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(execution_id: int, secrets_file: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _state_store_url(),
        "BC_SECRETS_FILE": secrets_file,
        "DJANGO_SETTINGS_MODULE": "bcservice.settings",
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, str(execution_id)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes all of it
        )


@pytest.fixture(autouse=True)
def _default_policies(db) -> None:
    """The policies the data migration ships (a transactional test flushes them)."""
    migration = importlib.import_module("approvals.migrations.0002_default_policies")
    migration.create_defaults(apps, None)


def _wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("host_action_dies", [False, True], ids=["action-finishes", "action-dies"])
def test_worker_killed_mid_rejoin_recovers_consistently(
    host_action_dies: bool,
    exec_lab: dict[str, Any],
    pair: PgPair,
    pg_resource,
    approved,
    operator,
    sites,
    settings,
    tmp_path: Path,
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    actions = copy.deepcopy(exec_lab["connection"]["host_actions"])
    actions["rejoin"]["argv"] += ["--hold-while", str(hold)]
    resource = pg_resource(host_actions=actions)
    request = approved(resource, "switchover", sites["west"])
    execution = services.execution_start(actor=operator, request=request, confirm=resource.name)

    worker = _start_worker(execution.pk, settings.BC_SECRETS_FILE, tmp_path / "worker.log")
    try:
        rejoin = ExecutionStep.objects.get(execution=execution, name="rejoin_old_primary")

        def under_way() -> bool:
            log = (tmp_path / "worker.log").read_text(errors="replace")
            assert worker.poll() is None, f"the worker ended early: {log[-2000:]}"
            return (
                ExecutionStep.objects.get(pk=rejoin.pk).state == "running"
                and Path(f"{hold}.pid").exists()
            )

        _wait(under_way, 90, "the rejoin step to be under way")
        assert not pair.servers()["primary"].running()  # the host action stopped it
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # kill -9 of the worker, mid-step
        worker.wait()
    action_pid = int(Path(f"{hold}.pid").read_text())
    if host_action_dies:
        os.kill(action_pid, signal.SIGKILL)  # the action dies with its host
    hold.unlink()  # an orphaned action goes on

    execution.refresh_from_db()
    assert execution.state == "running" and execution.owner  # left behind by the dead worker
    # The recovery sweep finds it once its heartbeat is older than ORPHAN_AFTER.
    _wait(
        lambda: execution.pk in recovery.orphans(),
        runner.ORPHAN_AFTER.total_seconds() + 15,
        "the execution to be seen as orphaned",
    )
    outcome = runner.run_execution(execution.pk)
    execution.refresh_from_db()
    steps = {s.name: s for s in execution.steps.all()}

    # A consistent end: succeeded with the roles swapped, one primary, the other streaming.
    assert outcome == "succeeded", execution.state_reason
    assert roles(pair) == {"primary": True, "standby": False}
    assert all(s.state == "succeeded" for s in steps.values())
    # Nothing state-changing ran twice except the idempotent rejoin, after verification.
    for name in ("fence_primary", "stop_old_primary", "promote"):
        assert steps[name].attempts == 1, name
        started = AuditEvent.objects.filter(
            action="execution.step_started", object_id=str(execution.pk), after__step=name
        )
        assert started.count() == 1, name
    verified = AuditEvent.objects.get(action="execution.step_verified", object_id=str(execution.pk))
    assert verified.after["step"] == "rejoin_old_primary"
    if host_action_dies:
        assert verified.after["verdict"] == "not_done"
        assert steps["rejoin_old_primary"].attempts == 2  # run again: it is idempotent
    else:
        assert verified.after["verdict"] == "done"
        assert steps["rejoin_old_primary"].attempts == 1
        assert "verified after worker restart" in steps["rejoin_old_primary"].detail
    assert AuditEvent.objects.filter(
        action="execution.resumed", object_id=str(execution.pk)
    ).exists()
