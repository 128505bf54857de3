"""Scale-out: two django-q2 workers (separate process groups) on the Redis broker share the work.

Real parts: Debian's redis-server on loopback, two `manage.py qcluster` processes, the test's
PostgreSQL state store. The targets are the lab's scripted Snowflake account (a DB-API double
returning rows shaped like SHOW FAILOVER GROUPS), which every process reads from one state file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.db import connection

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


def test_two_workers_share_collection_without_collecting_a_resource_twice_at_once(
    redis_url, tmp_path, make_resource, sites
):
    from django_q.models import Task

    from connectors.lab.snowflake_sim import SnowflakeLab
    from inventory.models import ObservationSample

    lab = SnowflakeLab(tmp_path / "snowflake.json", refresh_interval=30)
    info = lab.start()
    (tmp_path / "secrets.json").write_text(json.dumps({"lab/snowflake": info["credentials"]}))
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
    env = {
        **os.environ,
        "DATABASE_URL": _db_url(),
        "BC_REDIS_URL": redis_url,
        "BC_SNOWFLAKE_CONNECTION_FACTORY": "connectors.lab.snowflake_sim:connect",
        "BC_LAB_DIR": str(tmp_path),
        "BC_SECRETS_FILE": str(tmp_path / "secrets.json"),
        "BC_SWEEP_SLOTS": "2",
        "BC_SWEEP_LOOP_SECONDS": "6",
        "BC_Q_WORKERS": "2",
    }
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
    workers = [
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
