"""Fixtures for the SQL Server integration tests: pyodbc + FreeTDS against the AG simulator.

The simulator (``connectors.lab.mssql_sim``) runs one scripted TDS server per replica on
127.0.0.1; pyodbc talks to it through unixODBC and FreeTDS exactly as to a real instance (SQL
logins, TLS-wrapped login packet, batches, TDS errors), and gets rows shaped like SQL Server's
AG catalog views and DMVs. One simulator serves the module; every test starts from a healed AG.
Tests that change roles (failover) get a simulator of their own.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyodbc
import pytest

from connectors.contract import HeartbeatConfig, Target
from connectors.lab.mssql_sim import MssqlAgSimulator

TIMEOUT_SECONDS = 2.0  # the target's timeout: small, so that the timeout test stays short
TEST_DEADLINE = 60  # no test here may hang: SIGALRM fails it after this many seconds


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test exceeded {TEST_DEADLINE} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_DEADLINE)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _start(path: Path) -> tuple[MssqlAgSimulator, dict[str, Any]]:
    sim = MssqlAgSimulator(path)
    return sim, sim.start()


@pytest.fixture(scope="module")
def mssql_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    sim, info = _start(tmp_path_factory.mktemp("mssql") / "mssql.json")
    yield {"sim": sim, **info}
    sim.stop()


@pytest.fixture
def sim(mssql_lab: dict[str, Any]) -> Iterator[MssqlAgSimulator]:
    yield mssql_lab["sim"]
    mssql_lab["sim"].inject("heal")


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A simulator for this test alone (failovers change roles for good)."""
    sim, info = _start(tmp_path / "mssql.json")
    yield {"sim": sim, **info}
    sim.stop()


RESYNC_SECONDS = 0.3  # the former primary is SYNCHRONIZING this long after a role change


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """For execution plans: a simulator of its own (plans change roles for good) that
    resynchronizes like a real secondary, SYNCHRONIZING for a moment after a failover or a
    resume."""
    sim = MssqlAgSimulator(tmp_path / "mssql.json", resync_seconds=RESYNC_SECONDS)
    info = sim.start()
    yield {"sim": sim, **info}
    sim.stop()


def make_target(
    lab: dict[str, Any],
    credentials: dict[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    heartbeat: HeartbeatConfig | None = None,
    **connection: Any,
) -> Target:
    creds = lab["credentials"]["monitor"] if credentials is None else credentials
    return Target(
        name="orders-ag",
        platform="mssql",
        connection={**lab["connection"], **connection},
        credentials=lambda purpose: creds,
        heartbeat=heartbeat,
        timeout_seconds=timeout,
    )


@pytest.fixture
def target_for(mssql_lab: dict[str, Any], sim: MssqlAgSimulator) -> Callable[..., Target]:
    """``target_for(credentials=None, timeout=..., heartbeat=None, **connection)``."""
    return lambda *args, **kwargs: make_target(mssql_lab, *args, **kwargs)


@pytest.fixture
def target(target_for: Callable[..., Target]) -> Target:
    return target_for()


def sql(
    lab: dict[str, Any], site: str, statement: str, purpose: str = "monitor"
) -> list[list[dict[str, Any]]]:
    """Run a batch on one replica with pyodbc/FreeTDS; every result set as a list of dicts."""
    conn, creds = lab["connection"], lab["credentials"][purpose]
    cnxn = pyodbc.connect(
        f"DRIVER={{FreeTDS}};SERVER=127.0.0.1;PORT={conn[f'{site}_port']};TDS_Version=7.4;"
        f"DATABASE=master;UID={creds['username']};PWD={creds['password']};",
        timeout=3,
        autocommit=True,
    )
    try:
        cnxn.timeout = 3
        cursor = cnxn.cursor()
        cursor.execute(statement)
        sets = []
        while True:
            if cursor.description:
                names = [d[0] for d in cursor.description]
                sets.append([dict(zip(names, row)) for row in cursor.fetchall()])
            if not cursor.nextset():
                return sets
    finally:
        cnxn.close()
