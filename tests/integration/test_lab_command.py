"""``manage.py lab``: up (idempotent, stable ports), status, inject across processes, down.

Runs the real thing in a temporary ``BC_LAB_DIR``: the PostgreSQL pair (``connectors.lab.postgres``)
and a detached daemon process hosting the simulators. Needs no Django database. The checks that
need the PostgreSQL pair or the SQL Server simulator skip while those modules do not exist.
"""

from __future__ import annotations

import importlib.util
import io
import json
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from connectors.contract import Outcome, Replication, Target
from connectors.platforms.mongodb import MongoConnector

pytestmark = pytest.mark.integration


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError("test exceeded 120 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    lab = tmp_path / "lab"
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"other/entry": {"username": "kept", "password": "kept-pw"}}))
    with override_settings(BC_LAB_DIR=lab, BC_SECRETS_FILE=str(secrets)):
        try:
            yield lab
        finally:
            call_command("lab", "down", stdout=io.StringIO())


def lab(*args: str) -> str:
    out = io.StringIO()
    call_command("lab", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_up_status_inject_down(lab_dir: Path) -> None:
    started = time.monotonic()
    lab("up")
    up_seconds = time.monotonic() - started
    data = json.loads((lab_dir / "lab.json").read_text())
    assert {"mongodb", "snowflake"} <= set(data["targets"])
    assert data["daemon"]["pid"] and data["daemon"]["control_port"]
    assert data["targets"]["mongodb"]["secret_ref"] == "lab/mongodb"
    assert "password" not in json.dumps(data)  # credentials live in the secrets file only
    assert up_seconds < 60

    secrets_file = lab_dir.parent / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    secrets = json.loads(secrets_file.read_text())
    assert secrets["other/entry"]["username"] == "kept"  # merged, not replaced
    assert set(secrets["lab/mongodb"]) == {"monitor", "execute"}

    # Idempotent: same daemon, same ports.
    lab("up")
    again = json.loads((lab_dir / "lab.json").read_text())
    assert again == data

    assert "mongodb" in lab("status")
    lab("inject", "mongodb", "lag")
    lab("inject", "snowflake", "pause")
    status = json.loads(lab("status", "--json"))["targets"]
    assert status["mongodb"]["faults"] == ["lag"]
    assert status["snowflake"]["secondary_state"] == "SUSPENDED"

    # The fault injected in the daemon is what a connector in this process sees.
    conn = data["targets"]["mongodb"]["connection"]
    creds = secrets["lab/mongodb"]["monitor"]
    target = Target("m", "mongodb", conn, lambda purpose: creds, timeout_seconds=2)
    time.sleep(1.1)
    obs = MongoConnector().observe(target)
    assert obs.primary.outcome == obs.dr.outcome == Outcome.OK
    assert obs.replication == Replication.STREAMING and obs.lag_seconds >= 1.0

    lab("heal")
    assert json.loads(lab("status", "--json"))["targets"]["mongodb"]["faults"] == []
    assert lab("commands", "mongodb").strip().startswith("[")

    lab("down")
    with pytest.raises(CommandError, match="not up"):
        lab("status")


def test_ports_survive_a_restart(lab_dir: Path) -> None:
    lab("up")
    first = json.loads((lab_dir / "lab.json").read_text())
    lab("down")
    lab("up")
    second = json.loads((lab_dir / "lab.json").read_text())
    assert second["daemon"]["control_port"] == first["daemon"]["control_port"]
    assert second["targets"]["mongodb"]["connection"] == first["targets"]["mongodb"]["connection"]
    assert second["daemon"]["pid"] != first["daemon"]["pid"]


def test_clear_errors(lab_dir: Path) -> None:
    with pytest.raises(CommandError, match="not up"):
        lab("inject", "mongodb", "lag")
    lab("up")
    with pytest.raises(CommandError, match="unknown target"):
        lab("inject", "oracle", "lag")
    with pytest.raises(CommandError, match="unknown fault"):
        lab("inject", "mongodb", "meteor")
    with pytest.raises(CommandError, match="usage"):
        lab("inject", "mongodb")
    with pytest.raises(CommandError, match="takes no arguments"):
        lab("up", "now")


@pytest.mark.skipif(not _has("connectors.lab.postgres"), reason="PgPair not written yet")
def test_postgres_pair_is_part_of_the_lab(lab_dir: Path) -> None:
    lab("up")
    data = json.loads((lab_dir / "lab.json").read_text())
    pg = data["targets"]["postgres"]
    assert pg["secret_ref"] == "lab/postgres" and pg["connection"]
    secrets = json.loads((lab_dir.parent / "secrets.json").read_text())
    assert set(secrets["lab/postgres"]) == {"monitor", "execute"}
    status = json.loads(lab("status", "--json"))["targets"]
    assert status["postgres"]["available"] is True


@pytest.mark.skipif(not _has("connectors.lab.mssql_sim"), reason="MssqlAgSimulator not written yet")
def test_sql_server_simulator_is_part_of_the_lab(lab_dir: Path) -> None:
    lab("up")
    data = json.loads((lab_dir / "lab.json").read_text())
    assert data["targets"]["mssql"]["secret_ref"] == "lab/mssql"
    status = json.loads(lab("status", "--json"))["targets"]
    assert status["mssql"]["available"] is True
