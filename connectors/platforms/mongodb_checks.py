"""Read-only checks and shared helpers for the MongoDB execution plans (``mongodb_plan``).

Prechecks and postchecks look through ``MongoConnector.observe`` (monitor account, both members
in parallel), so a check sees exactly what the status board sees. Postchecks poll for up to
``SETTLE_SECONDS``: after an election the old primary needs a moment to pick a sync source.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bson import Timestamp
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from connectors.contract import (
    ExecutionContext,
    Observation,
    Replication,
    Role,
    SideObservation,
    StepResult,
    Target,
)
from inventory.connection_settings import with_defaults

if TYPE_CHECKING:
    from connectors.platforms.mongodb import MongoConnector

CODEC = CodecOptions(tz_aware=True)
DEFAULT_MAX_LAG_SECONDS = 10.0  # when the target carries no red threshold
DEFAULT_RPO_SECONDS = 60.0  # the inventory's default RPO target
NEAR_ZERO_LAG_SECONDS = 1.0  # optimeDate has one-second resolution
SETTLE_SECONDS = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


# -- helpers -----------------------------------------------------------------------------------


def max_lag(target: Target) -> float:
    """The resource's red lag threshold when the target carries one, else 10 s."""
    value = getattr(target, "red_lag_seconds", None)
    return float(value) if value else DEFAULT_MAX_LAG_SECONDS


def rpo_target(target: Target) -> float:
    value = getattr(target, "rpo_target_seconds", None)
    return float(value) if value else DEFAULT_RPO_SECONDS


def endpoints(ctx: ExecutionContext) -> tuple[str, str]:
    """(member to promote, member at the other configured site)."""
    conn = with_defaults("mongodb", dict(ctx.target.connection))
    primary, dr = str(conn["primary_member"]), str(conn["dr_member"])
    return (dr, primary) if ctx.promote_site == "dr" else (primary, dr)


def other_site(ctx: ExecutionContext) -> str:
    return "primary" if ctx.promote_site == "dr" else "dr"


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return endpoint.strip("[]"), 27017
    return host.strip("[]"), int(port)


@contextlib.contextmanager
def client_for(
    target: Target,
    endpoint: str,
    purpose: str | None,
    *,
    extra: float = 0.0,
    read_preference: str | None = None,
) -> Iterator[MongoClient]:
    """A direct connection to one member. ``purpose`` None: unauthenticated (``hello`` only);
    ``extra`` lengthens the socket timeout for commands that wait on the server."""
    conn = with_defaults("mongodb", dict(target.connection))
    creds = dict(target.credentials(purpose) or {}) if purpose else {}
    host, port = split_endpoint(endpoint)
    ms = max(1, int(target.timeout_seconds * 1000))
    options: dict[str, Any] = {
        "directConnection": True,
        "serverSelectionTimeoutMS": ms,
        "connectTimeoutMS": ms,
        "socketTimeoutMS": ms + int(extra * 1000),
        "tls": bool(conn.get("tls")),
        "retryReads": False,
        "retryWrites": False,  # a state-changing command is never silently repeated
        "maxPoolSize": 1,
        "appname": f"bcservice-{purpose or 'probe'}",
    }
    if read_preference:
        options["readPreference"] = read_preference
    if creds.get("username"):
        options.update(
            username=creds["username"],
            password=creds.get("password", ""),
            authSource=conn.get("auth_source") or "admin",
        )
    client: MongoClient = MongoClient(host, port, **options)
    try:
        yield client
    finally:
        client.close()


def fail(exc: BaseException, ctx: ExecutionContext, what: str) -> StepResult:
    """A failed command as a step result; code 13 says which privilege is missing."""
    if isinstance(exc, OperationFailure):
        name = (exc.details or {}).get("codeName", "")
        message = (exc.details or {}).get("errmsg", exc)
        text = f"{what} refused: code {exc.code} {name}: {message}"
        if exc.code == 13:
            text += " (execute needs clusterManager; the drill needs readWrite on bcservice)"
    else:
        text = str(exc).split(", Topology Description")[0]
        text = f"{what} failed: {type(exc).__name__}: {text}"
    return StepResult(ok=False, detail=text[:600])


def sleep_until(
    probe: Callable[[], T], done: Callable[[T], bool], seconds: float, interval: float = 0.05
) -> T | None:
    """Call ``probe`` until ``done`` says so (its value) or ``seconds`` pass (None)."""
    deadline = time.time() + max(0.0, seconds)
    while True:
        value = probe()
        if done(value):
            return value
        if time.time() >= deadline:
            return None
        time.sleep(interval)


def config_member(config: dict[str, Any], host: str) -> dict[str, Any]:
    for member in config["members"]:
        if member["host"] == host:
            return member
    raise KeyError(f"{host} is not in the replica set configuration")


def next_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy to propose: version + 1; ``term`` dropped (the primary sets it, 4.4+)."""
    new = copy.deepcopy(config)
    new.pop("term", None)
    new["version"] = int(config["version"]) + 1
    return new


def reconfig(client: MongoClient, config: dict[str, Any]) -> None:
    """replSetReconfig, retried only while the previous config is still being committed (code
    109 ConfigurationInProgress: nothing was applied, so sending again is safe)."""
    deadline = time.time() + 10
    while True:
        try:
            client.admin.command({"replSetReconfig": config}, codec_options=CODEC)
            return
        except OperationFailure as exc:
            if exc.code != 109 or time.time() > deadline:
                raise
            time.sleep(0.2)


def read_config(ctx: ExecutionContext, members: Sequence[str]) -> dict[str, Any] | None:
    """replSetGetConfig from the first member that answers (monitor account), else None."""
    for endpoint in members:
        try:
            with client_for(ctx.target, endpoint, "monitor") as client:
                return client.admin.command("replSetGetConfig", codec_options=CODEC)["config"]
        except PyMongoError:
            continue
    return None


def unfreeze(ctx: ExecutionContext, endpoint: str) -> None:
    """replSetFreeze 0 (execute account): a member that stepped down recently (an earlier
    switchover) may not be elected for the stepdown period; this lifts it. Harmless otherwise."""
    with client_for(ctx.target, endpoint, "execute") as client:
        client.admin.command({"replSetFreeze": 0}, codec_options=CODEC)


def is_writable_primary(target: Target, endpoint: str) -> bool:
    """hello (no privilege needed) says isWritablePrimary; False when it does not answer."""
    try:
        with client_for(target, endpoint, None) as client:
            return bool(client.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False


def marker(optime: Any) -> str | None:
    if not isinstance(optime, dict) or not isinstance(optime.get("ts"), Timestamp):
        return None
    ts = optime["ts"]
    return None if ts.time == 0 else f"{ts.time}:{ts.inc}/{int(optime.get('t', -1))}"


def _key(optime: dict[str, Any]) -> tuple[int, int, int]:
    ts = optime["ts"]
    return (int(optime.get("t", -1)), ts.time, ts.inc)


def compare_election(ctx: ExecutionContext, elected: dict[str, Any], other: str) -> dict[str, Any]:
    """caught_up_to when the optime the new primary was elected with is at least the old
    primary's last optime (both from the election metrics MongoDB keeps), else the gap."""
    seen = elected.get("lastSeenOpTimeAtElection")
    term = elected.get("electionTerm")
    try:
        with client_for(ctx.target, other, "monitor") as client:
            status = client.admin.command("replSetGetStatus", codec_options=CODEC)
    except PyMongoError:
        status = {}
    voted = status.get("electionParticipantMetrics") or {}
    last = voted.get("lastAppliedOpTimeAtElection") if voted.get("electionTerm") == term else None
    if not marker(seen) or not marker(last):
        return {"marker_unavailable": True}
    markers = {"new_primary_at_election": marker(seen), "old_primary_last": marker(last)}
    if _key(seen) >= _key(last):
        return {"caught_up_to": marker(seen), "last_markers": markers}
    gap = float(last["ts"].time - seen["ts"].time)
    return {"potential_loss_window_seconds": max(gap, 1.0), "last_markers": markers}


# -- checks ------------------------------------------------------------------------------------


class Checks:
    """The read-only step functions, bound to the connector whose ``observe`` they use."""

    def __init__(self, connector: MongoConnector) -> None:
        self.connector = connector

    def _look(self, ctx: ExecutionContext) -> tuple[Observation, SideObservation, SideObservation]:
        obs = self.connector.observe(ctx.target)
        sides = {"primary": obs.primary, "dr": obs.dr}
        return obs, sides[ctx.promote_site], sides[other_site(ctx)]

    def _settle(
        self,
        ctx: ExecutionContext,
        good: Callable[[Observation, SideObservation, SideObservation], bool],
    ) -> tuple[bool, Observation, SideObservation, SideObservation]:
        deadline = time.time() + SETTLE_SECONDS
        while True:
            obs, target, other = self._look(ctx)
            if good(obs, target, other) or time.time() >= deadline:
                return good(obs, target, other), obs, target, other
            time.sleep(0.2)

    @staticmethod
    def _roles(obs: Observation) -> dict[str, str]:
        return {"primary_site": str(obs.primary.role), "dr_site": str(obs.dr.role)}

    # prechecks (switchover, failback, drill)

    def members_reachable(self, ctx: ExecutionContext) -> StepResult:
        obs, target, other = self._look(ctx)
        down = [
            f"{s.endpoint}: {s.outcome} {s.error}".strip()
            for s in (target, other)
            if not s.reachable
        ]
        data = {"roles": self._roles(obs), "replication": str(obs.replication)}
        if down:
            return StepResult(ok=False, detail="not reachable: " + "; ".join(down), data=data)
        return StepResult(ok=True, detail="both members answer", data=data)

    def target_is_healthy_secondary(self, ctx: ExecutionContext) -> StepResult:
        obs, target, _ = self._look(ctx)
        ok = (
            target.role == Role.STANDBY
            and bool(target.healthy)
            and obs.replication == Replication.STREAMING
        )
        detail = (
            f"{target.endpoint} is {target.details.get('state') or target.role}, "
            f"replication {obs.replication}"
            + (f", syncing from {target.details.get('sync_source')}" if ok else "")
        )
        if target.role == Role.PRIMARY:
            detail += ": it is already the primary"
        return StepResult(ok=ok, detail=detail, data={"replication": str(obs.replication)})

    def lag_under_threshold(self, ctx: ExecutionContext) -> StepResult:
        obs, _, _ = self._look(ctx)
        limit = max_lag(ctx.target)
        data = {"lag_seconds": obs.lag_seconds, "threshold_seconds": limit}
        if obs.lag_seconds is None:
            return StepResult(
                ok=False, detail="lag cannot be measured (a marker is missing)", data=data
            )
        ok = obs.lag_seconds <= limit
        return StepResult(
            ok=ok, detail=f"lag {obs.lag_seconds:g} s {'≤' if ok else '>'} {limit:g} s", data=data
        )

    def set_has_primary(self, ctx: ExecutionContext) -> StepResult:
        obs, _, other = self._look(ctx)
        ctx.state["roles_before"] = self._roles(obs)
        data = {"marker_before": obs.primary_marker, "term": other.details.get("term")}
        if other.role != Role.PRIMARY:
            return StepResult(
                ok=False, detail=f"{other.endpoint} is not the primary ({other.role})", data=data
            )
        return StepResult(
            ok=True, detail=f"{other.endpoint} is primary at {obs.primary_marker}", data=data
        )

    # postchecks (switchover, failback)

    def roles_swapped(self, ctx: ExecutionContext) -> StepResult:
        ok, obs, target, other = self._settle(
            ctx, lambda o, t, x: t.role == Role.PRIMARY and x.role == Role.STANDBY
        )
        return StepResult(
            ok=ok,
            detail=f"{target.endpoint} is {target.role}, {other.endpoint} is {other.role}",
            data={"roles": self._roles(obs), "marker_after": obs.primary_marker},
        )

    def old_primary_replicating(self, ctx: ExecutionContext) -> StepResult:
        ok, obs, _, other = self._settle(
            ctx, lambda o, t, x: o.replication == Replication.STREAMING and x.role == Role.STANDBY
        )
        source = other.details.get("sync_source")
        return StepResult(
            ok=ok,
            detail=f"{other.endpoint}: replication {obs.replication}"
            + (f" from {source}" if source else ""),
            data={"replication": str(obs.replication)},
        )

    def lag_near_zero(self, ctx: ExecutionContext) -> StepResult:
        ok, obs, _, _ = self._settle(
            ctx,
            lambda o, t, x: o.lag_seconds is not None and o.lag_seconds <= NEAR_ZERO_LAG_SECONDS,
        )
        return StepResult(
            ok=ok, detail=f"lag {obs.lag_seconds} s", data={"lag_seconds": obs.lag_seconds}
        )

    # failover

    def target_reachable(self, ctx: ExecutionContext) -> StepResult:
        obs, target, _ = self._look(ctx)
        data = {"roles": self._roles(obs), "replication": str(obs.replication)}
        if not target.reachable:
            return StepResult(
                ok=False, detail=f"{target.endpoint}: {target.outcome} {target.error}", data=data
            )
        if target.role == Role.PRIMARY:
            return StepResult(
                ok=False, detail=f"{target.endpoint} is already the primary", data=data
            )
        ok = target.role == Role.STANDBY and bool(target.healthy)
        state = target.details.get("state") or target.role
        return StepResult(ok=ok, detail=f"{target.endpoint} is {state}", data=data)

    def target_is_primary(self, ctx: ExecutionContext) -> StepResult:
        ok, obs, target, _ = self._settle(ctx, lambda o, t, x: t.role == Role.PRIMARY)
        return StepResult(
            ok=ok,
            detail=f"{target.endpoint} is {target.role}",
            data={"roles": self._roles(obs), "marker_after": obs.primary_marker},
        )

    def old_primary_not_primary(self, ctx: ExecutionContext) -> StepResult:
        ok, _, _, other = self._settle(ctx, lambda o, t, x: x.role != Role.PRIMARY)
        if not other.reachable:
            return StepResult(
                ok=True,
                detail=f"{other.endpoint} is down; when it returns it rejoins as a non-voting "
                "secondary and rolls back the writes the new primary never had",
            )
        return StepResult(
            ok=ok, detail=f"{other.endpoint} is {other.details.get('state') or other.role}"
        )

    # drill

    def rpo_within_target(self, ctx: ExecutionContext) -> StepResult:
        measured, limit = ctx.state.get("rpo_measured_seconds"), rpo_target(ctx.target)
        if measured is None:
            return StepResult(ok=False, detail="no measurement recorded by the probe")
        ok = float(measured) <= limit
        return StepResult(
            ok=ok,
            detail=f"measured {measured:g} s {'≤' if ok else '>'} RPO target {limit:g} s",
            data={"rpo_measured_seconds": measured, "rpo_target_seconds": limit},
        )

    def roles_unchanged(self, ctx: ExecutionContext) -> StepResult:
        obs, _, _ = self._look(ctx)
        before, now = ctx.state.get("roles_before"), self._roles(obs)
        return StepResult(
            ok=before == now, detail=f"roles before {before}, now {now}", data={"roles": now}
        )
