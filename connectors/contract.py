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


class Connector(ABC):
    """One platform. Subclasses are stateless; the registry holds one instance per platform."""

    platform: ClassVar[str]

    @abstractmethod
    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        """Every name in CAPABILITY_NAMES with yes/no/conditional and, unless yes, a reason."""

    @abstractmethod
    def observe(self, target: Target) -> Observation:
        """Read-only look at both sides. Never raises for target problems."""
