"""Fixtures for the MongoDB end-to-end execution test: the real runner, the real connector, the
replica-set simulator, credentials through a temporary BC_SECRETS_FILE."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.lab.mongo_sim import MongoReplicaSetSimulator

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
def mongo_set(tmp_path, settings, monkeypatch) -> Iterator[dict[str, Any]]:
    """A started simulator whose credentials sit in the secrets file under ``lab/mongodb``."""
    sim = MongoReplicaSetSimulator(tmp_path / "mongodb.json")
    info = sim.start()
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"lab/mongodb": info["credentials"]}))
    settings.BC_SECRETS_FILE = str(secrets_file)
    # The runner is called in the test; nothing is queued on django-q2.
    monkeypatch.setattr("executions.services.enqueue", lambda execution_id: None)
    # The runner's heartbeat thread writes through its own database connection, which on the
    # SQLite test database meets the test's open transaction ("database table is locked") once
    # an execution runs past one beat (2 s). The claim heartbeat is not under test here.
    monkeypatch.setattr("executions.runner.HEARTBEAT_EVERY", timedelta(minutes=5))
    try:
        yield {"sim": sim, **info}
    finally:
        sim.stop()


@pytest.fixture
def approved(make_user, approve, sites) -> Callable[..., Any]:
    """``approved(resource, kind, target_site)``: a request approved by IT and business."""
    from approvals import services as approvals

    operator = make_user("operator", username="op-mongo")

    def make(resource: Any, kind: str, target_site: Any) -> Any:
        request = approvals.request_create(
            actor=operator,
            kind=kind,
            target_site=target_site,
            reason="planned DR exercise",
            resource=resource,
            change_ticket="CHG0001234",
        )
        approve(request)
        request.operator = operator
        return request

    return make
