"""Fixtures for the MongoDB integration tests: pymongo against the replica-set simulator.

The simulator (``connectors.lab.mongo_sim``) is a set of mockupdb wire servers on 127.0.0.1:
pymongo speaks the real wire protocol to it, including SCRAM-SHA-256 authentication, the
streaming ``hello`` monitor and ``endSessions``. One simulator serves the whole module; every
test starts from a healed set.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.contract import Target
from connectors.lab.mongo_sim import MongoReplicaSetSimulator

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


@pytest.fixture(scope="module")
def mongo_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    sim = MongoReplicaSetSimulator(tmp_path_factory.mktemp("mongo") / "mongodb.json")
    info = sim.start()
    yield {"sim": sim, **info}
    sim.stop()


@pytest.fixture
def sim(mongo_lab: dict[str, Any]) -> Iterator[MongoReplicaSetSimulator]:
    yield mongo_lab["sim"]
    mongo_lab["sim"].inject("heal")


@pytest.fixture
def target_for(mongo_lab: dict[str, Any], sim: MongoReplicaSetSimulator) -> Any:
    """``target_for(credentials=None, timeout=...)``: a Target on the simulated set."""

    def make(credentials: dict[str, str] | None = None, timeout: float = TIMEOUT_SECONDS) -> Target:
        creds = mongo_lab["credentials"]["monitor"] if credentials is None else credentials
        return Target(
            name="catalog-mongo",
            platform="mongodb",
            connection=mongo_lab["connection"],
            credentials=lambda purpose: creds,
            timeout_seconds=timeout,
        )

    return make


@pytest.fixture
def target(target_for: Any) -> Target:
    return target_for()
