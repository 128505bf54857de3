"""Fixtures for the Snowflake end-to-end execution test: the real runner, the registry's
SnowflakeConnector, the lab's scripted connection (through BC_SNOWFLAKE_CONNECTION_FACTORY) and
credentials through a temporary BC_SECRETS_FILE."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.lab import snowflake_sim

TEST_DEADLINE = 90  # no test here may hang: SIGALRM fails it after this many seconds


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test exceeded {TEST_DEADLINE} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_DEADLINE)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def snowflake_lab(tmp_path, settings, monkeypatch) -> dict[str, Any]:
    """A started lab whose credentials sit in the secrets file under ``lab/snowflake``."""
    monkeypatch.setenv("BC_LAB_DIR", str(tmp_path))
    settings.BC_LAB_DIR = tmp_path
    settings.BC_SNOWFLAKE_CONNECTION_FACTORY = "connectors.lab.snowflake_sim:connect"
    lab = snowflake_sim.SnowflakeLab(tmp_path / "snowflake.json", refresh_interval=60)
    info = lab.start()
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"lab/snowflake": info["credentials"]}))
    settings.BC_SECRETS_FILE = str(secrets_file)
    # The runner is called in the test; nothing is queued on django-q2.
    monkeypatch.setattr("executions.services.enqueue", lambda execution_id: None)
    # The runner's heartbeat thread writes through its own database connection, which on the
    # SQLite test database meets the test's open transaction ("database table is locked") once
    # an execution runs past one beat (2 s). The claim heartbeat is not under test here.
    monkeypatch.setattr("executions.runner.HEARTBEAT_EVERY", timedelta(minutes=5))
    return {"lab": lab, **info}


@pytest.fixture
def approved(make_user, approve, sites) -> Callable[..., Any]:
    """``approved(resource, kind, target_site)``: a request approved by IT and business."""
    from approvals import services as approvals

    operator = make_user("operator", username="op-snowflake")

    def make(resource: Any, kind: str, target_site: Any) -> Any:
        request = approvals.request_create(
            actor=operator,
            kind=kind,
            target_site=target_site,
            reason="planned DR exercise",
            resource=resource,
            change_ticket="CHG0004321",
        )
        approve(request)
        request.operator = operator
        return request

    return make
