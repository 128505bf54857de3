"""Executions for SQL Server availability groups: switchover, failover, failback and drill.

The only statements that change anything, each sent with the execution login to one replica:

- switchover / failback: ``ALTER AVAILABILITY GROUP [ag] FAILOVER;`` on the target secondary
  (planned manual failover: SQL Server refuses it, error 41142, unless that replica is
  synchronous-commit and every database SYNCHRONIZED, so no committed data can be lost);
- failback, first, on the replica going back to primary, for each suspended database:
  ``ALTER DATABASE [db] SET HADR RESUME;`` (a forced failover leaves the former primary's
  databases suspended);
- failover: ``ALTER AVAILABILITY GROUP [ag] FORCE_FAILOVER_ALLOW_DATA_LOSS;`` on the target.

Everything else reads with the monitoring login: ``observe()`` for the prechecks that need the
primary's view of both replicas (lag), one replica's own DMV rows (``LocalState``) for the rest.
Names enter statements only after a strict pattern check and bracket quoting (``]`` doubled).
The checks, numbers and evidence are described in docs/connectors/mssql.md ("Executions").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.contract import (
    ExecutionContext,
    NotSupported,
    Observation,
    Phase,
    PlanStep,
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
DEFAULT_RPO_SECONDS = 60.0
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


def _sites(ctx: ExecutionContext) -> tuple[str, str]:
    """(the site whose replica ends up primary, the other one)."""
    if ctx.promote_site not in OTHER:
        raise ValueError(f"promote_site must be 'primary' or 'dr', not {ctx.promote_site!r}")
    return ctx.promote_site, OTHER[ctx.promote_site]


def _ag(ctx: ExecutionContext) -> str:
    return str(ctx.target.connection.get("availability_group") or "")


def _lsn(value: Any) -> str | None:
    return None if value is None else str(int(value))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _fail(detail: str, **data: Any) -> StepResult:
    return StepResult(ok=False, detail=detail, data=data)


def _side(obs: Observation, site: str) -> SideObservation:
    return obs.primary if site == "primary" else obs.dr


def _observe(ctx: ExecutionContext) -> Observation:
    return MssqlConnector().observe(ctx.target)


def _local(ctx: ExecutionContext, site: str) -> tuple[LocalState | None, ReplicaError | None]:
    """One replica's own state with the monitoring login, or why it could not be read."""
    try:
        with ReplicaSession(ctx.target, site) as session:
            return session.local_state(), None
    except ReplicaError as exc:
        return None, exc


def _reported(ctx: ExecutionContext, state: LocalState) -> dict[str, Any]:
    """The row of the database whose markers are reported (as ``observe()`` picks it)."""
    name = pick_database(dict(ctx.target.connection), list(state.databases))
    return state.databases.get(name or "", {})


def _wait(
    session: ReplicaSession, ready: Callable[[LocalState], bool], seconds: float
) -> tuple[LocalState, bool]:
    """Poll one replica until ``ready``; (last state, whether it became ready in time)."""
    deadline = time.monotonic() + seconds
    while True:
        state = session.local_state()
        if ready(state) or time.monotonic() >= deadline:
            return state, ready(state)
        time.sleep(POLL_SECONDS)


def _is_online_primary(state: LocalState) -> bool:
    return state.role == "PRIMARY" and all(
        d.get("database_state_desc") in (None, "ONLINE") for d in state.databases.values()
    )


def _all_synchronized(state: LocalState) -> bool:
    return bool(state.databases) and all(
        d.get("synchronization_state_desc") == "SYNCHRONIZED" and not d.get("is_suspended")
        for d in state.databases.values()
    )


# -- prechecks (read-only, monitoring login) -------------------------------------------------


def check_reachable(ctx: ExecutionContext) -> StepResult:
    """Both replicas answer, the group has exactly one PRIMARY, and (unless a drill) the
    replica to promote is not it already. Failback always returns to the primary site."""
    obs = _observe(ctx)
    down = [s for s in (obs.primary, obs.dr) if not s.reachable]
    if down:
        return _fail("; ".join(f"{s.site} replica: {s.outcome}: {s.error}" for s in down))
    roles = {s.site: str(s.details.get("role")) for s in (obs.primary, obs.dr)}
    names = {s.site: s.details.get("replica") for s in (obs.primary, obs.dr)}
    data = {"roles": roles, "replicas": names}
    primaries = [site for site, role in roles.items() if role == "PRIMARY"]
    if len(primaries) != 1:
        return _fail(f"expected exactly one PRIMARY, found roles {roles}", **data)
    ctx.state["roles_before"] = roles
    if ctx.kind == "drill":
        return StepResult(ok=True, detail=f"both replicas answer; roles {roles}", data=data)
    if ctx.kind == "failback" and ctx.promote_site != "primary":
        return _fail("a failback returns the primary role to the primary site", **data)
    target, _ = _sites(ctx)
    if roles[target] == "PRIMARY":
        return _fail(f"{names[target]} ({target} site) is already PRIMARY: nothing to do", **data)
    return StepResult(ok=True, detail=f"both replicas answer; roles {roles}", data=data)


def _synchronized(ctx: ExecutionContext, allow_suspended: bool) -> StepResult:
    """The target is a synchronous-commit SECONDARY with every database SYNCHRONIZED (a
    failback accepts suspended databases: its first step resumes them). Never overridable:
    SQL Server itself refuses a planned failover otherwise."""
    target, _ = _sites(ctx)
    side = _side(_observe(ctx), target)
    if not side.reachable:
        return _fail(f"{target} replica: {side.outcome}: {side.error}")
    details, name = side.details, side.details.get("replica")
    dbs: dict[str, dict[str, Any]] = details.get("databases") or {}
    states = {db: str(v.get("synchronization_state")) for db, v in dbs.items()}
    data = {"databases": states, "availability_mode": details.get("availability_mode")}
    if details.get("role") != "SECONDARY":
        return _fail(f"{name} is {details.get('role')}, not SECONDARY", **data)
    if details.get("availability_mode") != "SYNCHRONOUS_COMMIT":
        return _fail(
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
        return _fail(
            f"{name} is not SYNCHRONIZED for every database: {what or 'no databases'}", **data
        )
    synced = sorted(db for db in dbs if db not in suspended)
    detail = f"{name} is a synchronous-commit SECONDARY, SYNCHRONIZED for {synced}"
    if suspended:
        detail += f"; suspended, resumed by the first step: {suspended}"
    return StepResult(ok=True, detail=detail, data={**data, "suspended": suspended})


def _lag(ctx: ExecutionContext, allow_suspended: bool) -> StepResult:
    """Estimated data loss near zero (overridable where the policy allows: a lagging redo only
    makes the failover slower). Records the primary's hardened LSN as ``marker_before``."""
    obs = _observe(ctx)
    data = {
        "marker_before": obs.primary_marker,
        "dr_marker": obs.dr_marker,
        "lag_seconds": obs.lag_seconds,
        "lag_bytes": obs.lag_bytes,
    }
    ctx.state["marker_before"] = obs.primary_marker  # the failover step compares with it
    if allow_suspended and obs.replication.value == "paused":
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


def _healthy(ctx: ExecutionContext, allow_suspended: bool) -> StepResult:
    """Replication streaming and both replicas HEALTHY (overridable where the policy allows)."""
    obs = _observe(ctx)
    state = obs.replication.value
    accepted = ("streaming", "paused") if allow_suspended else ("streaming",)
    health = {s.site: s.healthy for s in (obs.primary, obs.dr)}
    data = {"replication": state, "healthy": health, "notes": obs.notes}
    ok = state in accepted and (all(health.values()) or state == "paused")
    detail = f"replication {state}, healthy {health}" + (
        f"; {'; '.join(obs.notes)}" if obs.notes else ""
    )
    return StepResult(ok=ok, detail=detail, data=data, overridable=not ok)


# -- the planned failover (switchover, failback) ---------------------------------------------


def planned_failover(ctx: ExecutionContext) -> StepResult:
    """``ALTER AVAILABILITY GROUP [ag] FAILOVER;`` on the target, execution login. Re-reads the
    target in the same session first and does not send the statement unless it is still a
    SYNCHRONIZED synchronous-commit SECONDARY (the precheck may be minutes old)."""
    target, _ = _sites(ctx)
    sql = failover_sql(_ag(ctx))
    with ReplicaSession(ctx.target, target, "execute") as session:
        before = session.local_state()
        if before.role != "SECONDARY" or before.availability_mode != "SYNCHRONOUS_COMMIT":
            return _fail(f"not sent: {before.replica} is {before.role}, {before.availability_mode}")
        if not _all_synchronized(before):
            states = {n: d.get("synchronization_state_desc") for n, d in before.databases.items()}
            return _fail(f"not sent: {before.replica} is not SYNCHRONIZED: {states}")
        ctx.log(f"{before.replica}: {sql}")
        started = time.monotonic()
        try:
            session.run(sql, timeout=STATEMENT_SECONDS)
        except ReplicaError as exc:
            return _fail(_refused(before.replica, sql, exc))
        after, promoted = _wait(session, _is_online_primary, SETTLE_SECONDS)
        unavailable = time.monotonic() - started
    if not promoted:
        return _fail(
            f"{sql} accepted but {after.replica} is {after.role} after {unavailable:.1f} s"
        )
    row, was = _reported(ctx, after), _reported(ctx, before)
    caught_up = _lsn(row.get("recovery_lsn"))
    data = {
        "statement": sql,
        "replica": after.replica,
        "write_unavailable_seconds": round(unavailable, 3),
        "caught_up_to": caught_up,
        "marker_after": _lsn(row.get("last_hardened_lsn")),
        "redone_before": _lsn(was.get("last_redone_lsn")),
    }
    marker_before = ctx.state.get("marker_before")
    if marker_before and caught_up:
        data["covers_marker_before"] = int(caught_up) >= int(marker_before)
    detail = (
        f"{after.replica} is PRIMARY {unavailable:.3f} s after {sql} (caught up to LSN {caught_up})"
    )
    return StepResult(ok=True, detail=detail, data=data)


def _refused(replica: str, sql: str, exc: ReplicaError) -> str:
    if exc.outcome.value == "timeout":
        return f"no answer from {replica} to {sql}: it may still complete; state unknown ({exc})"
    return f"{replica} refused {sql}: {exc}"


def verify_promoted(ctx: ExecutionContext) -> Verified:
    """After a crash: PRIMARY -> done, SECONDARY -> not done, anything else -> unknown."""
    state, _ = _local(ctx, _sites(ctx)[0])
    if state is None:
        return Verified.UNKNOWN
    return {"PRIMARY": Verified.DONE, "SECONDARY": Verified.NOT_DONE}.get(
        state.role, Verified.UNKNOWN
    )


def resume_data_movement(ctx: ExecutionContext) -> StepResult:
    """``ALTER DATABASE [db] SET HADR RESUME;`` for each suspended database on the replica
    going back to primary, then wait until they are SYNCHRONIZED. Safe to repeat."""
    target, _ = _sites(ctx)
    with ReplicaSession(ctx.target, target, "execute") as session:
        before = session.local_state()
        suspended = sorted(n for n, d in before.databases.items() if d.get("is_suspended"))
        if not suspended:
            return StepResult(ok=True, detail=f"nothing suspended on {before.replica}")
        if before.role != "SECONDARY":
            return _fail(f"not sent: {before.replica} is {before.role}, not SECONDARY")
        sent = []
        for name in suspended:
            sql = resume_sql(name)
            ctx.log(f"{before.replica}: {sql}")
            session.run(sql)
            sent.append(sql)
        started = time.monotonic()
        after, synced = _wait(session, _all_synchronized, RESUME_SECONDS)
    data = {
        "statements": sent,
        "resumed": suspended,
        "seconds": round(time.monotonic() - started, 3),
    }
    states = {n: d.get("synchronization_state_desc") for n, d in after.databases.items()}
    if not synced:
        return _fail(
            f"resumed {suspended} but {after.replica} is not SYNCHRONIZED: {states}", **data
        )
    return StepResult(
        ok=True, detail=f"resumed {suspended} on {after.replica}: {states}", data=data
    )


def verify_resumed(ctx: ExecutionContext) -> Verified:
    state, _ = _local(ctx, _sites(ctx)[0])
    if state is None:
        return Verified.UNKNOWN
    suspended = any(d.get("is_suspended") for d in state.databases.values())
    return Verified.NOT_DONE if suspended else Verified.DONE


# -- postchecks ------------------------------------------------------------------------------


def roles_swapped(ctx: ExecutionContext) -> StepResult:
    """The target answers PRIMARY and the other replica SECONDARY; records the new primary's
    recovery_lsn again, so the evidence holds even when the step was verified after a crash."""
    target, other = _sites(ctx)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        (new, error), (old, old_error) = _local(ctx, target), _local(ctx, other)
        roles = {target: new.role if new else None, other: old.role if old else None}
        if roles == {target: "PRIMARY", other: "SECONDARY"} or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS * 4)
    if new is None or old is None or roles != {target: "PRIMARY", other: "SECONDARY"}:
        return _fail(f"roles {roles}; {error or old_error or ''}".rstrip("; "), roles=roles)
    row = _reported(ctx, new)
    data = {
        "roles": roles,
        "caught_up_to": _lsn(row.get("recovery_lsn")),
        "marker_after": _lsn(row.get("last_hardened_lsn")),
    }
    return StepResult(ok=True, detail=f"{new.replica} PRIMARY, {old.replica} SECONDARY", data=data)


def old_primary_synchronized(ctx: ExecutionContext) -> StepResult:
    """The former primary moves data again: SYNCHRONIZED (or still SYNCHRONIZING at the
    deadline, with a note), lag near zero."""
    _, other = _sites(ctx)
    started = time.monotonic()
    while True:
        obs = _observe(ctx)
        side = _side(obs, other)
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
        return _fail(f"{name}: {side.details.get('role')}, {states}, lag {obs.lag_seconds}", **data)
    note = "" if synced else " (still SYNCHRONIZING)"
    return StepResult(
        ok=True, detail=f"{name} SECONDARY {states}{note} in {waited:.2f} s", data=data
    )


# -- plans -----------------------------------------------------------------------------------


def _observe_seconds(target: Target) -> float:
    # observe() returns within 3 T + 1 s (see mssql.py); postchecks poll up to SETTLE_SECONDS.
    return 3 * max(1.0, target.timeout_seconds) + 6


def switch_steps(target: Target, failback: bool) -> list[PlanStep]:
    """switchover (to ``promote_site``) or failback (to the primary site, resuming first)."""
    seconds = _observe_seconds(target)

    def pre(name: str, run: Check, description: str) -> PlanStep:
        return PlanStep(name, Phase.PRECHECK, run, description, timeout_seconds=seconds)

    steps = [
        pre("replicas_reachable", check_reachable, "Both replicas answer (monitoring login)."),
        pre(
            "target_synchronized",
            lambda ctx: _synchronized(ctx, failback),
            "The replica to promote is a synchronous-commit SECONDARY, SYNCHRONIZED for every "
            "database" + (" (suspended ones are resumed first)." if failback else "."),
        ),
        pre("lag_near_zero", lambda ctx: _lag(ctx, failback), "Estimated data loss near zero."),
        pre("ag_healthy", lambda ctx: _healthy(ctx, failback), "Replication streaming, healthy."),
    ]
    if failback:
        steps.append(
            PlanStep(
                "resume_data_movement",
                Phase.STEP,
                resume_data_movement,
                "ALTER DATABASE [db] SET HADR RESUME on each suspended database of the replica "
                "going back to primary, then wait until SYNCHRONIZED.",
                changes_state=True,
                idempotent=True,
                verify=verify_resumed,
                timeout_seconds=RESUME_SECONDS + 30,
            )
        )
    steps += [
        PlanStep(
            "planned_failover",
            Phase.STEP,
            planned_failover,
            "ALTER AVAILABILITY GROUP [ag] FAILOVER on the replica to promote (planned, no data "
            "loss); measures the write-unavailable window.",
            changes_state=True,
            idempotent=False,
            verify=verify_promoted,
            timeout_seconds=STATEMENT_SECONDS + SETTLE_SECONDS + 15,
        ),
        PlanStep(
            "roles_swapped",
            Phase.POSTCHECK,
            roles_swapped,
            "The promoted replica is PRIMARY, the other SECONDARY.",
            timeout_seconds=SETTLE_SECONDS + seconds,
        ),
        PlanStep(
            "old_primary_synchronized",
            Phase.POSTCHECK,
            old_primary_synchronized,
            "The former primary is SECONDARY and SYNCHRONIZED, lag near zero.",
            timeout_seconds=SETTLE_SECONDS + 2 * seconds,
        ),
    ]
    return steps


def build(kind: str, target: Target) -> list[PlanStep]:
    """The plan for ``kind``. No I/O and no credentials: only the names are checked here."""
    from connectors.platforms.mssql_failover import drill_steps, failover_steps

    try:
        bracketed(str(target.connection.get("availability_group") or ""), "availability group")
    except ValueError as exc:
        raise NotSupported(f"{target.name}: {exc}") from None
    if kind in ("switchover", "failback"):
        return switch_steps(target, failback=kind == "failback")
    if kind == "failover":
        return failover_steps(target)
    if kind == "drill":
        return drill_steps(target)
    raise NotSupported(f"{target.name}: SQL Server has no {kind!r} execution")
