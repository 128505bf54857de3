"""The connector contract: what every platform module provides, and the values it returns.

The core (collection, rules, executions) only speaks these types and never branches on a platform
name; ``connectors.registry`` maps a platform to its connector. Platform modules must not import
Django models: they receive a ``Target`` (plain data plus a credentials callable) and return plain
dataclasses, so they can be exercised against the lab without a database.

Rules every connector keeps:
- ``observe()`` never raises for a problem on the target. Connection errors, timeouts,
  authentication failures and permission errors come back as an ``Outcome`` on the side concerned.
- Every network call has a timeout (``Target.timeout_seconds``).
- Credentials are fetched through ``Target.credentials(purpose)`` at the moment they are needed,
  with purpose ``"monitor"`` for observation and ``"execute"`` only inside a state-changing step.
  They are never stored on the observation, logged, or placed in ``raw``/error text.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


class Support(enum.StrEnum):
    YES = "yes"
    NO = "no"
    CONDITIONAL = "conditional"


CAPABILITY_NAMES = (
    "monitor",
    "replication_marker",
    "heartbeat",
    "switchover",
    "failover",
    "failback",
    "drill",
)


@dataclass(frozen=True)
class Capability:
    support: Support
    reason: str = ""


class Outcome(enum.StrEnum):
    """How talking to one side of a replicated pair went."""

    OK = "ok"
    CONNECTION_ERROR = "connection_error"
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth_failed"
    PERMISSION_DENIED = "permission_denied"
    NOT_CONFIGURED = "not_configured"
    ERROR = "error"


class Role(enum.StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"  # a readable/replicating secondary
    OTHER = "other"  # e.g. arbiter, recovering, resolving
    UNKNOWN = "unknown"


class Replication(enum.StrEnum):
    STREAMING = "streaming"  # healthy, data flowing
    PAUSED = "paused"  # replay/apply paused on the standby
    STOPPED = "stopped"  # no replication connection
    BROKEN = "broken"  # error state (e.g. diverged timeline, not synchronizing)
    UNKNOWN = "unknown"  # cannot tell (a side is unreachable)


@dataclass
class SideObservation:
    """What one side (the member at the configured primary or DR site) looked like."""

    site: str  # "primary" or "dr": the configured site, not the observed role
    endpoint: str  # host:port or account, never with credentials
    outcome: Outcome = Outcome.OK
    error: str = ""  # sanitized, human readable
    role: Role = Role.UNKNOWN
    healthy: bool | None = None
    marker: str | None = None  # e.g. LSN "0/3000060", optime "1700000000:5", AG LSN, timestamp
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.outcome == Outcome.OK


@dataclass
class Observation:
    observed_at: datetime
    primary: SideObservation
    dr: SideObservation
    replication: Replication = Replication.UNKNOWN
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    # A marker proves completeness; when the platform cannot give one, say so.
    marker_available: bool = False
    primary_marker: str | None = None  # marker on whichever side is the current primary
    dr_marker: str | None = None  # replay/apply marker on the replicating side
    heartbeat_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # sanitized payload for troubleshooting
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HeartbeatConfig:
    table: str
    column: str = "ts"


CredentialsFn = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True)
class Target:
    """Everything a connector needs about one resource; no Django objects, no stored secrets."""

    name: str
    platform: str
    connection: Mapping[str, Any]
    credentials: CredentialsFn = field(repr=False)
    heartbeat: HeartbeatConfig | None = None
    timeout_seconds: float = 5.0
    resource_id: int | None = None
    # The resource's readiness thresholds, for plans' prechecks and drill pass marks.
    yellow_lag_seconds: float | None = None
    red_lag_seconds: float | None = None
    rpo_target_seconds: float | None = None


# --- Execution hooks -------------------------------------------------------------------------
# A connector turns a request kind into a plan: prechecks, then state-changing steps, then
# postchecks. The runner (executions app) records each as an ExecutionStep, enforces timeouts,
# and after a worker crash asks ``verify`` whether a state-changing step took effect before
# anything continues.


class Phase(enum.StrEnum):
    PRECHECK = "precheck"
    STEP = "step"
    POSTCHECK = "postcheck"


class Verified(enum.StrEnum):
    """What the target says about a state-changing step that may or may not have run."""

    DONE = "done"
    NOT_DONE = "not_done"
    UNKNOWN = "unknown"


@dataclass
class StepResult:
    ok: bool
    detail: str = ""
    # Values seen (markers, roles, timings); shown on the step and kept as evidence.
    data: dict[str, Any] = field(default_factory=dict)
    # A precheck failure that an operator may override with a recorded reason...
    overridable: bool = False
    # ...only where the policy allows overrides, unless this is a guard whose override is the
    # operator's own explicit call (invariant 10: promoting while the old primary may write).
    override_needs_policy: bool = True


@dataclass
class ExecutionContext:
    """What a step gets. ``state`` is persisted after every step (JSON-safe values only), so a
    resumed execution sees what earlier steps learned, e.g. the final LSN of a fenced primary."""

    target: Target
    kind: str  # failover, switchover, failback, drill
    promote_site: str  # "primary" or "dr": the configured site whose member ends up primary
    overrides: frozenset[str] = frozenset()  # step names/guards the operator chose to override
    state: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print


StepFn = Callable[[ExecutionContext], StepResult]
VerifyFn = Callable[[ExecutionContext], Verified]


@dataclass(frozen=True)
class PlanStep:
    name: str
    phase: Phase
    run: StepFn
    description: str = ""
    changes_state: bool = False
    # Safe to run again after a crash (only then may the runner resume by re-running it).
    idempotent: bool = True
    # For state-changing steps: did it take effect? Asked after a crash before continuing.
    verify: VerifyFn | None = None
    timeout_seconds: float = 60.0


class NotSupported(Exception):
    """The connector cannot run this kind here; the message says why (shown before start)."""


class Connector(ABC):
    """One platform. Subclasses are stateless; the registry holds one instance per platform."""

    platform: ClassVar[str]

    @abstractmethod
    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        """Every name in CAPABILITY_NAMES with yes/no/conditional and, unless yes, a reason."""

    @abstractmethod
    def observe(self, target: Target) -> Observation:
        """Read-only look at both sides. Never raises for target problems."""

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        """The steps for ``kind``; raise NotSupported with the reason when it cannot be done.

        Credentials for state-changing work are fetched inside the step functions with
        ``target.credentials("execute")``, never while planning.
        """
        raise NotSupported(f"{self.platform}: {kind} is not implemented by this connector")
