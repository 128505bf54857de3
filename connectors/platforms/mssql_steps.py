"""Shared pieces of the SQL Server execution plans (``mssql_plan``): names and statements,
reads of one replica, the read-only prechecks and postchecks of a planned failover, and sending
a failover statement.

Every read here uses the monitoring login: ``observe()`` where the primary's view of both
replicas is needed (lag, replication state), else one replica's own DMV rows (``LocalState``).
Names enter statements only after a strict pattern check and bracket quoting (``]`` doubled).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.contract import (
    ExecutionContext,
    Observation,
    Outcome,
    Replication,
    SideObservation,
    StepResult,
    Target,
    Verified,
)
from connectors.platforms.mssql import (
    AG_NAME_RE,
    LocalState,
    MssqlConnector,
    ReplicaError,
    ReplicaSession,
)
from connectors.platforms.mssql_assess import pick_database

LAG_LIMIT_SECONDS = 2.0  # estimated data loss above this fails the "lag" precheck
SETTLE_SECONDS = 30.0  # how long postchecks wait for roles and synchronization to settle
RESUME_SECONDS = 120.0  # how long a resumed database may take to be SYNCHRONIZED again
STATEMENT_SECONDS = 60  # query timeout for FAILOVER: a real one can take tens of seconds
POLL_SECONDS = 0.05
MAX_PROBE_SECONDS = 300.0
GUARD = "old_primary_not_writable"  # the invariant-10 precheck an operator may override
OTHER = {"primary": "dr", "dr": "primary"}
# Database names: letters, digits and _ . - $ # @ ] and inner spaces. ``]`` is allowed because
# bracket quoting doubles it; quotes, semicolons, other brackets and control characters are not.
SYSNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-$#@\] ]{0,127}$")

Check = Callable[[ExecutionContext], StepResult]


# -- names and statements --------------------------------------------------------------------


def bracketed(name: str, what: str) -> str:
    """``[name]`` with ``]`` doubled, after a strict check of what the name may contain."""
    pattern = AG_NAME_RE if what == "availability group" else SYSNAME_RE
    if not pattern.match(name or "") or name != name.strip():
        raise ValueError(f"{what} name {name!r} is not a plain identifier")
    return "[" + name.replace("]", "]]") + "]"


def failover_sql(ag: str, forced: bool = False) -> str:
    verb = "FORCE_FAILOVER_ALLOW_DATA_LOSS" if forced else "FAILOVER"
    return f"ALTER AVAILABILITY GROUP {bracketed(ag, 'availability group')} {verb};"


def resume_sql(database: str) -> str:
    return f"ALTER DATABASE {bracketed(database, 'database')} SET HADR RESUME;"


# -- small helpers ---------------------------------------------------------------------------


def sites(ctx: ExecutionContext) -> tuple[str, str]:
    """(the site whose replica ends up primary, the other one)."""
    if ctx.promote_site not in OTHER:
        raise ValueError(f"promote_site must be 'primary' or 'dr', not {ctx.promote_site!r}")
    return ctx.promote_site, OTHER[ctx.promote_site]


def ag_name(ctx: ExecutionContext) -> str:
    return str(ctx.target.connection.get("availability_group") or "")


def lsn_text(value: Any) -> str | None:
    return None if value is None else str(int(value))


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def fail(detail: str, **data: Any) -> StepResult:
    return StepResult(ok=False, detail=detail, data=data)


def side_of(obs: Observation, site: str) -> SideObservation:
    return obs.primary if site == "primary" else obs.dr


def observe_now(ctx: ExecutionContext) -> Observation:
    return MssqlConnector().observe(ctx.target)


def read_local(ctx: ExecutionContext, site: str) -> tuple[LocalState | None, ReplicaError | None]:
    """One replica's own state with the monitoring login, or why it could not be read."""
    try:
        with ReplicaSession(ctx.target, site) as session:
            return session.local_state(), None
    except ReplicaError as exc:
        return None, exc


def reported_row(ctx: ExecutionContext, state: LocalState) -> dict[str, Any]:
    """The row of the database whose markers are reported (as ``observe()`` picks it)."""
    name = pick_database(dict(ctx.target.connection), list(state.databases))
    return state.databases.get(name or "", {})


def wait_until(
    session: ReplicaSession, ready: Callable[[LocalState], bool], seconds: float
) -> tuple[LocalState, bool]:
    """Poll one replica until ``ready``; (last state, whether it became ready in time)."""
    deadline = time.monotonic() + seconds
    while True:
        state = session.local_state()
        if ready(state) or time.monotonic() >= deadline:
            return state, ready(state)
        time.sleep(POLL_SECONDS)


def is_online_primary(state: LocalState) -> bool:
    return state.role == "PRIMARY" and all(
        d.get("database_state_desc") in (None, "ONLINE") for d in state.databases.values()
    )


def all_synchronized(state: LocalState) -> bool:
    return bool(state.databases) and all(
        d.get("synchronization_state_desc") == "SYNCHRONIZED" and not d.get("is_suspended")
        for d in state.databases.values()
    )


# -- prechecks (read-only, monitoring login) -------------------------------------------------


def check_reachable(ctx: ExecutionContext) -> StepResult:
    """Both replicas answer, the group has exactly one PRIMARY, and (unless a drill) the
    replica to promote is not it already. Failback always returns to the primary site."""
    obs = observe_now(ctx)
    down = [s for s in (obs.primary, obs.dr) if not s.reachable]
    if down:
        return fail("; ".join(f"{s.site} replica: {s.outcome}: {s.error}" for s in down))
    roles = {s.site: str(s.details.get("role")) for s in (obs.primary, obs.dr)}
    names = {s.site: s.details.get("replica") for s in (obs.primary, obs.dr)}
    data = {"roles": roles, "replicas": names}
    primaries = [site for site, role in roles.items() if role == "PRIMARY"]
    if len(primaries) != 1:
        return fail(f"expected exactly one PRIMARY, found roles {roles}", **data)
    ctx.state["roles_before"] = roles
    if ctx.kind == "drill":
        return StepResult(ok=True, detail=f"both replicas answer; roles {roles}", data=data)
    if ctx.kind == "failback" and ctx.promote_site != "primary":
        return fail("a failback returns the primary role to the primary site", **data)
    target, _ = sites(ctx)
    if roles[target] == "PRIMARY":
        return fail(f"{names[target]} ({target} site) is already PRIMARY: nothing to do", **data)
    return StepResult(ok=True, detail=f"both replicas answer; roles {roles}", data=data)


def check_synchronized(ctx: ExecutionContext, allow_suspended: bool) -> StepResult:
    """The target is a synchronous-commit SECONDARY with every database SYNCHRONIZED (a
    failback accepts suspended databases: its first step resumes them). Never overridable:
    SQL Server itself refuses a planned failover otherwise."""
    target, _ = sites(ctx)
    side = side_of(observe_now(ctx), target)
    if not side.reachable:
        return fail(f"{target} replica: {side.outcome}: {side.error}")
    details, name = side.details, side.details.get("replica")
    dbs: dict[str, dict[str, Any]] = details.get("databases") or {}
    states = {db: str(v.get("synchronization_state")) for db, v in dbs.items()}
    data = {"databases": states, "availability_mode": details.get("availability_mode")}
    if details.get("role") != "SECONDARY":
        return fail(f"{name} is {details.get('role')}, not SECONDARY", **data)
    if details.get("availability_mode") != "SYNCHRONOUS_COMMIT":
        return fail(
            f"{name} is {details.get('availability_mode')}: a planned failover needs a "
            "synchronous-commit secondary that is SYNCHRONIZED; use a forced failover (possible "
            "data loss) or switch it to SYNCHRONOUS_COMMIT and wait until it is SYNCHRONIZED",
            **data,
        )
    suspended = {db: v.get("suspend_reason") for db, v in dbs.items() if v.get("is_suspended")}
    behind = {
        db: state
        for db, state in states.items()
        if state != "SYNCHRONIZED" and not (allow_suspended and db in suspended)
    }
    if not dbs or behind or (suspended and not allow_suspended):
        what = {db: f"{state}, suspended {suspended[db]}" if db in suspended else state
                for db, state in behind.items()}  # fmt: skip
        return fail(
            f"{name} is not SYNCHRONIZED for every database: {what or 'no databases'}", **data
        )
    synced = sorted(db for db in dbs if db not in suspended)
    detail = f"{name} is a synchronous-commit SECONDARY, SYNCHRONIZED for {synced}"
    if suspended:
        detail += f"; suspended, resumed by the first step: {suspended}"
    return StepResult(ok=True, detail=detail, data={**data, "suspended": suspended})


def check_lag(ctx: ExecutionContext, allow_suspended: bool) -> StepResult:
    """Estimated data loss near zero (overridable where the policy allows: a lagging redo only
    makes the failover slower). Records the primary's hardened LSN as ``marker_before``."""
    obs = observe_now(ctx)
    data = {
        "marker_before": obs.primary_marker,
        "dr_marker": obs.dr_marker,
        "lag_seconds": obs.lag_seconds,
        "lag_bytes": obs.lag_bytes,
    }
    ctx.state["marker_before"] = obs.primary_marker  # the failover step compares with it
    if allow_suspended and obs.replication == Replication.PAUSED:
        return StepResult(
            ok=True, detail="data movement suspended: checked after resume", data=data
        )
    if obs.lag_seconds is None:
        return StepResult(False, "estimated data loss unavailable", data, overridable=True)
    if obs.lag_seconds > LAG_LIMIT_SECONDS:
        detail = f"estimated data loss {obs.lag_seconds:.1f} s > {LAG_LIMIT_SECONDS:g} s"
        return StepResult(False, detail, data, overridable=True)
    detail = (
        f"estimated data loss {obs.lag_seconds:.3f} s (limit {LAG_LIMIT_SECONDS:g} s), "
        f"{(obs.lag_bytes or 0) // 1024} KB queued; primary at LSN {obs.primary_marker}"
    )
    return StepResult(ok=True, detail=detail, data=data)


def check_healthy(ctx: ExecutionContext, allow_suspended: bool) -> StepResult:
    """Replication streaming and both replicas HEALTHY (overridable where the policy allows)."""
    obs = observe_now(ctx)
    state = obs.replication.value
    accepted = ("streaming", "paused") if allow_suspended else ("streaming",)
    health = {s.site: s.healthy for s in (obs.primary, obs.dr)}
    data = {"replication": state, "healthy": health, "notes": obs.notes}
    ok = state in accepted and (all(health.values()) or state == "paused")
    detail = f"replication {state}, healthy {health}" + (
        f"; {'; '.join(obs.notes)}" if obs.notes else ""
    )
    return StepResult(ok=ok, detail=detail, data=data, overridable=not ok)


# -- sending a failover statement, and asking whether it took effect ------------------------


def send_and_wait(
    ctx: ExecutionContext, session: ReplicaSession, replica: str, sql: str
) -> tuple[LocalState | None, float, str]:
    """Send one failover statement, then poll the replica until it is an ONLINE PRIMARY.
    Returns (its last state, seconds since the statement was sent, "" or why it failed).

    An error answer to the statement is a refusal: nothing changed. No answer, a dropped
    session, or an error after the statement was accepted leaves the outcome open: the target
    is asked once more (read-only) and the step fails with "state unknown"; it is never sent
    again."""
    ctx.log(f"{replica}: {sql}")
    started, accepted = time.monotonic(), False
    try:
        session.run(sql, timeout=STATEMENT_SECONDS)
        accepted = True
        after, promoted = wait_until(session, is_online_primary, SETTLE_SECONDS)
    except ReplicaError as exc:
        took = time.monotonic() - started
        if not accepted and exc.outcome not in (Outcome.TIMEOUT, Outcome.CONNECTION_ERROR):
            return None, took, f"{replica} refused {sql}: {exc}"
        unknown = (
            f"{sql} sent to {replica}, then: {exc}. State unknown (the replica now says: "
            f"{verify_promoted(ctx)}); check the roles before anything else"
        )
        return None, took, unknown
    took = time.monotonic() - started
    if not promoted:
        return after, took, f"{sql} accepted but {after.replica} is {after.role} after {took:.1f} s"
    return after, took, ""


def verify_promoted(ctx: ExecutionContext) -> Verified:
    """After a crash: PRIMARY -> done, SECONDARY -> not done, anything else -> unknown."""
    state, _ = read_local(ctx, sites(ctx)[0])
    if state is None:
        return Verified.UNKNOWN
    return {"PRIMARY": Verified.DONE, "SECONDARY": Verified.NOT_DONE}.get(
        state.role, Verified.UNKNOWN
    )


# -- postchecks ------------------------------------------------------------------------------


def roles_swapped(ctx: ExecutionContext) -> StepResult:
    """The target answers PRIMARY and the other replica SECONDARY; records the new primary's
    recovery_lsn again, so the evidence holds even when the step was verified after a crash."""
    target, other = sites(ctx)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        (new, error), (old, old_error) = read_local(ctx, target), read_local(ctx, other)
        roles = {target: new.role if new else None, other: old.role if old else None}
        if roles == {target: "PRIMARY", other: "SECONDARY"} or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS * 4)
    if new is None or old is None or roles != {target: "PRIMARY", other: "SECONDARY"}:
        return fail(f"roles {roles}; {error or old_error or ''}".rstrip("; "), roles=roles)
    row = reported_row(ctx, new)
    data = {
        "roles": roles,
        "caught_up_to": lsn_text(row.get("recovery_lsn")),
        "marker_after": lsn_text(row.get("last_hardened_lsn")),
    }
    return StepResult(ok=True, detail=f"{new.replica} PRIMARY, {old.replica} SECONDARY", data=data)


def old_primary_synchronized(ctx: ExecutionContext) -> StepResult:
    """The former primary moves data again: SYNCHRONIZED (or still SYNCHRONIZING at the
    deadline, with a note), lag near zero."""
    _, other = sites(ctx)
    started = time.monotonic()
    while True:
        obs = observe_now(ctx)
        side = side_of(obs, other)
        dbs = (side.details.get("databases") or {}) if side.reachable else {}
        states = {n: v.get("synchronization_state") for n, v in dbs.items()}
        synced = bool(states) and set(states.values()) == {"SYNCHRONIZED"}
        lag_ok = obs.lag_seconds is not None and obs.lag_seconds <= LAG_LIMIT_SECONDS
        waited = time.monotonic() - started
        if (synced and lag_ok) or waited > SETTLE_SECONDS:
            break
        time.sleep(POLL_SECONDS * 4)
    data = {"databases": states, "lag_seconds": obs.lag_seconds, "seconds": round(waited, 3)}
    flowing = bool(states) and set(states.values()) <= {"SYNCHRONIZED", "SYNCHRONIZING"}
    name = side.details.get("replica") or other
    if side.details.get("role") != "SECONDARY" or not flowing or not lag_ok:
        return fail(f"{name}: {side.details.get('role')}, {states}, lag {obs.lag_seconds}", **data)
    note = "" if synced else " (still SYNCHRONIZING)"
    return StepResult(
        ok=True, detail=f"{name} SECONDARY {states}{note} in {waited:.2f} s", data=data
    )


def observe_seconds(target: Target) -> float:
    # observe() returns within 3 T + 1 s (see mssql.py); postchecks poll up to SETTLE_SECONDS.
    return 3 * max(1.0, target.timeout_seconds) + 6
