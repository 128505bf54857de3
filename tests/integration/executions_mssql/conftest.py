"""Fixtures for running a SQL Server execution through the real runner against the AG simulator:
the lab, its credentials in a temporary BC_SECRETS_FILE, a resource pointing at it, and an
approved request (IT and business approvers, as every default policy needs)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.lab.mssql_sim import MssqlAgSimulator

TEST_DEADLINE = 90  # SIGALRM fails a test that runs longer than this, instead of hanging
SECRET_REF = "lab/mssql"


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
def mssql_lab(tmp_path: Path, settings: Any) -> Iterator[dict[str, Any]]:
    """A simulator of its own, its logins in a temporary secrets file (file:lab/mssql)."""
    sim = MssqlAgSimulator(tmp_path / "mssql.json", resync_seconds=0.3)
    info = sim.start()
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({SECRET_REF: info["credentials"]}))
    secrets_file.chmod(0o600)
    settings.BC_SECRETS_FILE = str(secrets_file)
    yield {"sim": sim, **info}
    sim.stop()


@pytest.fixture
def mssql_resource(mssql_lab: dict[str, Any], make_resource: Callable[..., Any]) -> Any:
    return make_resource(
        "orders-ag",
        platform="mssql",
        connection=dict(mssql_lab["connection"]),
        secret_ref=SECRET_REF,
        timeout_seconds=2.0,
    )


@pytest.fixture
def approved(
    make_user: Callable[..., Any], approve: Callable[[Any], Any], sites: dict[str, Any]
) -> Callable[..., Any]:
    """``approved(resource, kind, target_site)``: created by an operator, approved by an IT and a
    business approver. Returns (request, operator)."""
    from approvals import services as approvals

    def make(resource: Any, kind: str, target_site: str) -> tuple[Any, Any]:
        operator = make_user("operator", username="op-mssql")
        request = approvals.request_create(
            actor=operator,
            kind=kind,
            target_site=sites[target_site],
            reason="planned DR test of the orders availability group",
            resource=resource,
            change_ticket="CHG7654321",
        )
        approve(request)
        return request, operator

    return make
