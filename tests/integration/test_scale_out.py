"""Scale-out: two django-q2 workers (separate process groups) on the Redis broker share the work.

Real parts: Debian's redis-server on loopback, two `manage.py qcluster` processes, the test's
PostgreSQL state store. The targets are the lab's scripted Snowflake account (a DB-API double
returning rows shaped like SHOW FAILOVER GROUPS and obeying ALTER FAILOVER GROUP), which every
process reads from one state file and which logs every statement with the sending process's pid.

Collection: no resource is collected twice at once. Execution: an approved switchover started
through the service and delivered twice (both workers take it) runs exactly once.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from connectors.lab.snowflake_sim import SnowflakeLab

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


@pytest.fixture
def redis_url(tmp_path):
    if not Path("/usr/bin/redis-server").exists():
        pytest.fail("redis-server is missing: scripts/bootstrap.sh installs it")
    port = _free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, time.monotonic() + 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _db_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _stop(procs: list[subprocess.Popen]) -> None:
    # qcluster's children survive a signal to the parent alone: signal each process group.
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _start_lab(tmp_path: Path) -> tuple[SnowflakeLab, dict[str, Any]]:
    lab = SnowflakeLab(tmp_path / "snowflake.json", refresh_interval=30)
    info = lab.start()
    (tmp_path / "secrets.json").write_text(json.dumps({"lab/snowflake": info["credentials"]}))
    return lab, info


def _worker_env(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": _db_url(),
        "BC_REDIS_URL": redis_url,
        "BC_SNOWFLAKE_CONNECTION_FACTORY": "connectors.lab.snowflake_sim:connect",
        "BC_LAB_DIR": str(tmp_path),
        "BC_SECRETS_FILE": str(tmp_path / "secrets.json"),
        "BC_Q_WORKERS": "2",
        **extra,
    }


def _start_workers(env: dict[str, str], tmp_path: Path, logs: contextlib.ExitStack) -> list:
    return [
        subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=logs.enter_context(open(tmp_path / f"worker{n}.log", "w")),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        for n in range(2)
    ]


def test_two_workers_share_collection_without_collecting_a_resource_twice_at_once(
    redis_url, tmp_path, make_resource, sites
):
    from django_q.models import Task

    from inventory.models import ObservationSample

    _, info = _start_lab(tmp_path)
    resources = [
        make_resource(
            f"sf-{i}",
            platform="snowflake",
            connection=info["connection"],
            secret_ref="lab/snowflake",
            collect_interval_seconds=INTERVAL,
            rpo_target_seconds=900,
            yellow_lag_seconds=600,
            red_lag_seconds=900,
            timeout_seconds=3,
        )
        for i in range(12)
    ]
    env = _worker_env(redis_url, tmp_path, BC_SWEEP_SLOTS="2", BC_SWEEP_LOOP_SECONDS="6")
    # Kick the chain off at once instead of waiting for the once-a-minute watchdog schedule.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django;django.setup();from django_q.tasks import async_task;"
            "async_task('connectors.tasks.run_sweep')",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "bcservice.settings"},
        check=True,
        timeout=60,
    )
    logs = contextlib.ExitStack()
    workers = _start_workers(env, tmp_path, logs)
    try:
        time.sleep(20)
    finally:
        _stop(workers)
        logs.close()

    samples: dict[int, list[float]] = defaultdict(list)
    for resource_id, at in ObservationSample.objects.values_list("resource_id", "at").order_by(
        "at"
    ):
        samples[resource_id].append(at.timestamp())
    assert set(samples) == {r.pk for r in resources}, "every resource was collected"
    for resource_id, times in samples.items():
        assert len(times) >= 3, (resource_id, times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        # A resource collected by two workers at once would show two samples close together.
        assert min(gaps) >= INTERVAL * 0.5, (resource_id, gaps)
    sweeps = Task.objects.filter(func="connectors.tasks.run_sweep", success=True)
    slots = {
        t.result.get("slot") for t in sweeps if isinstance(t.result, dict) and t.result.get("ran")
    }
    assert slots == {0, 1}, f"two sweep loops ran side by side: {slots}"
    for n in range(2):
        log = (tmp_path / f"worker{n}.log").read_text()
        # Task.cluster holds the configured cluster name, the same for both: use their own logs.
        assert "'connectors.tasks.run_sweep'" in log, f"worker {n} took no sweep:\n{log[-2000:]}"


def _approved(make_user: Any, approve: Any, resource: Any, target_site: Any) -> tuple[Any, Any]:
    """A switchover request approved by IT and business, and the operator who asked."""
    from django.apps import apps

    from approvals import services as approvals

    # The policies the data migration ships (a transactional test before this one flushed them).
    importlib.import_module("approvals.migrations.0002_default_policies").create_defaults(
        apps, None
    )
    operator = make_user("operator", username="op-scale-out")
    request = approvals.request_create(
        actor=operator,
        kind="switchover",
        target_site=target_site,
        reason="scale-out: one run on two workers",
        resource=resource,
        change_ticket="CHG0009009",
    )
    return operator, approve(request)


def _wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def _claims_waiting() -> int:
    """Sessions blocked in the runner's claim (its conditional UPDATE; one execution here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE %s",
            ['UPDATE "executions_execution" SET "owner"%%'],
        )
        return cursor.fetchone()[0]


def test_an_execution_delivered_to_both_workers_runs_exactly_once(
    redis_url, tmp_path, make_resource, make_user, approve, sites, settings, monkeypatch
):
    """Both deliveries reach the claim at the same moment: a session of the test holds the
    execution's row lock while the two are delivered, and lets go once both workers wait on it."""
    import psycopg
    from django.db.models import Sum
    from django_q.conf import Conf
    from django_q.models import Task

    from audit.models import AuditEvent
    from audit.selectors import verify_chain
    from bcservice.models import TaskRuntimeBucket
    from executions import services
    from executions.models import Execution

    lab, info = _start_lab(tmp_path)
    monkeypatch.setenv("BC_LAB_DIR", str(tmp_path))
    settings.BC_LAB_DIR = tmp_path
    settings.BC_SNOWFLAKE_CONNECTION_FACTORY = "connectors.lab.snowflake_sim:connect"
    settings.BC_SECRETS_FILE = str(tmp_path / "secrets.json")
    # This process queues where the workers take from: django-q2's Redis list (as the web
    # process does with BC_REDIS_URL set) instead of the test settings' ORM broker.
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    resource = make_resource(
        "analytics-snowflake",
        platform="snowflake",
        connection=info["connection"],
        secret_ref="lab/snowflake",
        timeout_seconds=3,
    )
    operator, request = _approved(make_user, approve, resource, sites["west"])
    func = "executions.tasks.run_execution"

    holder = psycopg.connect(_db_url())
    enqueue = services.enqueue

    def delivered_twice_under_lock(execution_id: int) -> None:
        # execution_start queues the run after its commit; here it is queued twice, as a
        # broker redelivering it would, while the row is locked so neither worker gets ahead.
        holder.execute(
            "SELECT id FROM executions_execution WHERE id = %s FOR UPDATE", [execution_id]
        )
        enqueue(execution_id)
        enqueue(execution_id)

    monkeypatch.setattr(services, "enqueue", delivered_twice_under_lock)
    logs = contextlib.ExitStack()
    workers = _start_workers(_worker_env(redis_url, tmp_path), tmp_path, logs)
    try:
        _wait_for(
            lambda: all("running." in (tmp_path / f"worker{n}.log").read_text() for n in range(2)),
            60,
            "the workers did not start",
        )
        # Both clusters now wait on the list (BLPOP, served first come first served), so the two
        # deliveries go one to each.
        execution = services.execution_start(actor=operator, request=request, confirm=resource.name)
        _wait_for(lambda: _claims_waiting() == 2, 30, "two claims never waited")
        holder.rollback()  # both claims go at once
        _wait_for(
            lambda: (
                Task.objects.filter(func=func).count() == 2
                and Execution.objects.get(pk=execution.pk).state in ("succeeded", "failed")
            ),
            40,
            "the execution did not finish, or a delivery was not processed",
        )
    finally:
        holder.close()
        _stop(workers)
        logs.close()

    execution.refresh_from_db()
    assert execution.state == "succeeded", execution.state_reason
    tasks = {t.result: t for t in Task.objects.filter(func=func)}
    refused = "not claimed: finished, or owned by a live worker"
    assert set(tasks) == {"succeeded", refused}, list(tasks)
    for n in range(2):
        log = (tmp_path / f"worker{n}.log").read_text()
        assert f"processing execution-{execution.pk} '{func}'" in log, (
            f"worker {n} did not get the execution:\n{log[-2000:]}"
        )
    # One claim: the runner counts every take-up (a second would also audit execution.resumed).
    assert execution.runs == 1
    events = AuditEvent.objects.filter(
        object_type="executions.execution", object_id=str(execution.pk)
    )
    assert not events.filter(action="execution.resumed").exists()
    steps = list(execution.steps.order_by("position").values_list("name", "state", "attempts"))
    assert [name for name, _, _ in steps] == [
        "accounts_reachable",
        "target_is_secondary",
        "replication_not_broken",
        "final_refresh",
        "promote_target",
        "target_is_primary",
        "old_primary_is_secondary",
    ]
    assert all(state == "succeeded" and attempts == 1 for _, state, attempts in steps), steps
    started = sorted(e.after["step"] for e in events.filter(action="execution.step_started"))
    assert started == sorted(name for name, _, _ in steps), "every step started exactly once"
    # The target's own record: each change arrived once, all of the run from one process.
    sent = [s for s in lab.received_statements() if s["user"] == "BC_EXECUTE"]
    assert [s["sql"] for s in sent if s["sql"].startswith("ALTER")] == [
        "ALTER FAILOVER GROUP BC_FAILOVER REFRESH",
        "ALTER FAILOVER GROUP BC_FAILOVER PRIMARY",
    ]
    assert len({s["pid"] for s in sent}) == 1, {s["pid"] for s in sent}
    assert lab.status()["primary_site"] == "dr"
    assert verify_chain().ok
    # Job runtimes (bcservice/job_runtimes.py) crossed the processes: both deliveries counted.
    counted = TaskRuntimeBucket.objects.filter(func=func, outcome="success")
    assert counted.aggregate(n=Sum("count"))["n"] == 2
    print(f"\nexecution {execution.pk}: ran once in {execution.evidence['total_seconds']:.2f} s")
