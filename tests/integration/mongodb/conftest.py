"""Fixtures for the MongoDB integration tests: pymongo against the replica-set simulator.

The simulator (``connectors.lab.mongo_sim``) is a set of mockupdb wire servers on 127.0.0.1:
pymongo speaks the real wire protocol to it, including SCRAM-SHA-256 authentication, the
streaming ``hello`` monitor and ``endSessions``. One simulator serves the whole module; every
test starts from the initial topology (``reset()``: faults healed, member 0 primary, the DR member
priority 0, no replication delay).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.contract import ExecutionContext, Target
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
    mongo_lab["sim"].reset()
    mongo_lab["sim"].replication_delay = 0.0
    yield mongo_lab["sim"]
    mongo_lab["sim"].replication_delay = 0.0
    mongo_lab["sim"].reset()


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


@dataclass(frozen=True)
class ThresholdTarget(Target):
    """A Target carrying the resource's thresholds, which the plans read when present."""

    red_lag_seconds: float | None = None
    rpo_target_seconds: float | None = None


class Credentials:
    """Per-purpose credentials that remember which purposes were asked for, in order."""

    def __init__(self, by_purpose: Mapping[str, Mapping[str, str]]) -> None:
        self.by_purpose = dict(by_purpose)
        self.asked: list[str] = []

    def __call__(self, purpose: str) -> Mapping[str, str]:
        self.asked.append(purpose)
        return self.by_purpose[purpose]


@pytest.fixture
def exec_target(mongo_lab: dict[str, Any], sim: MongoReplicaSetSimulator) -> Any:
    """``exec_target(execute=None, **thresholds)``: a Target with monitor and execute accounts."""

    def make(execute: dict[str, str] | None = None, **thresholds: Any) -> ThresholdTarget:
        creds = Credentials(
            {
                "monitor": mongo_lab["credentials"]["monitor"],
                "execute": execute or mongo_lab["credentials"]["execute"],
            }
        )
        return ThresholdTarget(
            name="catalog-mongo",
            platform="mongodb",
            connection=mongo_lab["connection"],
            credentials=creds,
            timeout_seconds=TIMEOUT_SECONDS,
            **thresholds,
        )

    return make


def make_context(target: Target, kind: str, promote_site: str = "dr") -> ExecutionContext:
    return ExecutionContext(
        target=target, kind=kind, promote_site=promote_site, log=lambda message: None
    )


@pytest.fixture
def make_ctx() -> Any:
    """``make_ctx(target, kind, promote_site="dr")``: what the runner hands each step (not
    named ``context``: pytest-playwright owns that fixture name)."""
    return make_context
