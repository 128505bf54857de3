"""Fixtures for the PostgreSQL integration tests: a real primary and streaming standby (PgPair).

One pair serves the whole session (creating it takes about two seconds); it lives in a pytest temp
directory (its data in /tmp when the postgres user cannot reach that directory) and is destroyed
at the end. Every test that touches the pair gets it through ``pair``, which heals it afterwards,
so the tests run in any order. None of them needs the Django database.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.contract import HeartbeatConfig, Target
from connectors.lab.pg_server import PG_BIN
from connectors.lab.postgres import PgPair

TIMEOUT_SECONDS = 2.0  # the target's timeout (libpq's minimum), so the timeout test stays short
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


@pytest.fixture(scope="session")
def pg_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    pair = PgPair(tmp_path_factory.mktemp("pg") / "pair", name="itest")
    started = time.monotonic()
    try:
        info = pair.up()
        yield {"pair": pair, "created_seconds": time.monotonic() - started, **info}
    finally:
        pair.destroy()


@pytest.fixture
def pair(pg_lab: dict[str, Any]) -> Iterator[PgPair]:
    yield pg_lab["pair"]
    pg_lab["pair"].inject("heal")


@pytest.fixture
def target_for(pg_lab: dict[str, Any], pair: PgPair) -> Callable[..., Target]:
    """``target_for(credentials=None, timeout=..., heartbeat=True, **connection)``."""

    def make(
        credentials: dict[str, str] | None = None,
        timeout: float = TIMEOUT_SECONDS,
        heartbeat: bool = True,
        **connection: Any,
    ) -> Target:
        creds = pg_lab["credentials"]["monitor"] if credentials is None else credentials
        return Target(
            name="orders-pg",
            platform="postgres",
            connection={**pg_lab["connection"], **connection},
            credentials=lambda purpose: creds,
            heartbeat=HeartbeatConfig(**pg_lab["heartbeat"]) if heartbeat else None,
            timeout_seconds=timeout,
        )

    return make


@pytest.fixture
def target(target_for: Callable[..., Target]) -> Target:
    return target_for()
