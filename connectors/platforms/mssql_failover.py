"""Forced failover and the drill for SQL Server availability groups (see ``mssql_plan``).

Forced failover (``ALTER AVAILABILITY GROUP [ag] FORCE_FAILOVER_ALLOW_DATA_LOSS;`` on the
target) may lose data, so it is preceded by the invariant-10 guard (the old primary must be
shown not to accept writes, or the operator overrides explicitly) and carries the potential
loss window as evidence. The drill never changes anything: it reads the primary's hardened LSN
and times how long the DR replica takes to redo past it.

Loss window (seconds of commits the promoted replica may not have), per database, worst counts:

- the old primary was read and is not PRIMARY (it can no longer write): 0 when the DR replica
  has hardened at least the old primary's last hardened LSN (a forced failover redoes all
  hardened log), else the old primary's ``last_commit_time`` minus the DR replica's (both
  stamped by the primary's clock);
- otherwise (unreachable, or still PRIMARY and overridden) it may have committed until the
  promotion: the DR replica's clock at the promotion minus its ``last_commit_time``, an upper
  bound; when the DR replica lost the primary is kept with the markers.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from connectors.contract import (
    ExecutionContext,
    Outcome,
    StepResult,
)
from connectors.platforms.mssql import LocalState, ReplicaSession
from connectors.platforms.mssql_assess import pick_database
from connectors.platforms.mssql_steps import (
    GUARD,
    MAX_PROBE_SECONDS,
    POLL_SECONDS,
    SETTLE_SECONDS,
    fail,
    failover_sql,
    is_online_primary,
    iso,
    lsn_text,
    observe_now,
    read_local,
    reported_row,
    resume_sql,
    send_and_wait,
    sites,
)

DEFAULT_RPO_SECONDS = 60.0
_UNREACHABLE = (Outcome.CONNECTION_ERROR, Outcome.TIMEOUT)


# -- the invariant-10 guard ------------------------------------------------------------------


def _guard(ctx: ExecutionContext) -> tuple[StepResult, LocalState | None]:
    """Is the old primary shown not to accept writes? (result, its state when it was read).
    A failure is overridable by the operator without a policy (invariant 10)."""
    target, other = sites(ctx)
    old, error = read_local(ctx, other)

    def refuse(detail: str, **data: Any) -> tuple[StepResult, LocalState | None]:
        result = StepResult(False, detail, data, overridable=True, override_needs_policy=False)
        return result, old

    if old is not None:
        row = reported_row(ctx, old)
        seen = {
            "role": old.role,
            "last_commit_time": iso(row.get("last_commit_time")),
            "last_hardened_lsn": lsn_text(row.get("last_hardened_lsn")),
            "utc_offset_minutes": old.utc_offset.total_seconds() / 60,
        }
        ctx.state["old_primary_seen"] = seen  # the loss window uses it if it goes away later
        if old.role == "PRIMARY":
            return refuse(
                f"{old.replica} ({other} site) is reachable and still PRIMARY: it may be "
                "accepting writes. A switchover is the safe way; proceed only by an explicit "
                "override: it then becomes a suspended SECONDARY and whatever it commits "
                "until then is lost.",
                old_primary=seen,
            )
        return StepResult(True, f"{old.replica} is reachable and {old.role}: no writes"), old
    assert error is not None
    if error.outcome not in _UNREACHABLE:
        return refuse(
            f"the old primary answers but cannot be read ({error.outcome}: {error}): "
            "it cannot be shown not to accept writes"
        )
    dr, _ = read_local(ctx, target)
    if dr is not None and dr.role == "SECONDARY" and dr.connected == "CONNECTED":
        return refuse(
            f"the old primary is not reachable from here ({error}) but {dr.replica} is still "
            "CONNECTED to its primary: it is alive and may be accepting writes"
        )
    lost = f"; {dr.replica} is {dr.role}, {dr.connected} since {dr.lost_primary_at}" if dr else ""
    return StepResult(True, f"the old primary is not reachable ({error}){lost}"), None


def old_primary_not_writable(ctx: ExecutionContext) -> StepResult:
    """The invariant-10 precheck (see ``_guard``)."""
    return _guard(ctx)[0]


# -- loss window -----------------------------------------------------------------------------


def loss_window(
    ctx: ExecutionContext, dr: LocalState, old: LocalState | None
) -> tuple[float | None, dict[str, Any], str]:
    """(seconds or None when no marker could be read, the markers used, how it was bounded)."""
    final = old is not None and old.role != "PRIMARY"
    seen = ctx.state.get("old_primary_seen") or {}
    offset = old.utc_offset if old else dr.utc_offset
    if not old and "utc_offset_minutes" in seen:
        offset = timedelta(minutes=seen["utc_offset_minutes"])
    windows: dict[str, float] = {}
    for name, row in dr.databases.items():
        commit, hardened = row.get("last_commit_time"), row.get("last_hardened_lsn")
        if final:
            assert old is not None
            mine = old.databases.get(name, {})
            theirs = mine.get("last_hardened_lsn")
            if hardened is not None and theirs is not None and int(hardened) >= int(theirs):
                windows[name] = 0.0  # the DR replica hardened all the log the old primary has
                continue
            if commit is not None and mine.get("last_commit_time") is not None:
                windows[name] = max(0.0, (mine["last_commit_time"] - commit).total_seconds())
        elif commit is not None:
            # The commit time is the primary's clock; the DR replica's "now" is its own.
            elapsed = dr.server_utc_now - (commit - offset)
            windows[name] = max(0.0, elapsed.total_seconds())
    row = reported_row(ctx, dr)
    markers = {
        "dr_last_commit_time": iso(row.get("last_commit_time")),
        "dr_last_hardened_lsn": lsn_text(row.get("last_hardened_lsn")),
        "dr_last_redone_lsn": lsn_text(row.get("last_redone_lsn")),
        "dr_lost_primary_at": iso(dr.lost_primary_at),
    }
    if old is not None:
        mine = reported_row(ctx, old)
        markers["primary_last_commit_time"] = iso(mine.get("last_commit_time"))
        markers["primary_last_hardened_lsn"] = lsn_text(mine.get("last_hardened_lsn"))
    elif seen:
        markers["primary_last_commit_time"] = seen.get("last_commit_time")
        markers["primary_last_hardened_lsn"] = seen.get("last_hardened_lsn")
    markers = {k: v for k, v in markers.items() if v is not None}
    seconds = max(windows.values()) if windows else None
    if final:
        how = "the old primary can no longer write: measured against its last markers"
    else:
        how = "the old primary was not seen unable to write: upper bound, until the promotion"
    return (None if seconds is None else round(seconds, 3)), markers, how


def potential_data_loss(ctx: ExecutionContext) -> StepResult:
    """Evidence before the change: the loss window if the target were promoted now."""
    target, other = sites(ctx)
    dr, error = read_local(ctx, target)
    if dr is None:
        return fail(f"{target} replica cannot be read: {error}", marker_unavailable=True)
    old, _ = read_local(ctx, other)
    seconds, markers, how = loss_window(ctx, dr, old)
    if seconds is None:
        return StepResult(True, "marker unavailable: no commit time", {"marker_unavailable": True})
    data = {"potential_loss_window_seconds": seconds, "last_markers": markers}
    return StepResult(True, f"potential loss window up to {seconds:.3f} s ({how})", data)


# -- failover --------------------------------------------------------------------------------


def target_reachable(ctx: ExecutionContext) -> StepResult:
    """The replica to promote answers (its own view) and is not PRIMARY already."""
    target, _ = sites(ctx)
    dr, error = read_local(ctx, target)
    if dr is None:
        return fail(f"{target} replica cannot be read: {error}")
    states = {n: d.get("synchronization_state_desc") for n, d in dr.databases.items()}
    data = {"role": dr.role, "connected": dr.connected, "databases": states}
    if dr.role == "PRIMARY":
        return fail(f"{dr.replica} is already PRIMARY: nothing to fail over", **data)
    detail = f"{dr.replica} answers: {dr.role}, {dr.connected}, {dr.availability_mode}, {states}"
    return StepResult(True, detail, data)


def forced_failover(ctx: ExecutionContext) -> StepResult:
    """``FORCE_FAILOVER_ALLOW_DATA_LOSS`` on the target, execution login, after the guard is
    checked again (the precheck may be minutes old) and the loss window is recorded."""
    target, _ = sites(ctx)
    guard, old = _guard(ctx)
    overridden = not guard.ok and GUARD in ctx.overrides
    if not guard.ok and not overridden:
        return fail(f"not sent: {guard.detail}")
    sql = failover_sql(str(ctx.target.connection.get("availability_group") or ""), forced=True)
    with ReplicaSession(ctx.target, target, "execute") as session:
        before = session.local_state()
        if before.role == "PRIMARY":
            return fail(f"not sent: {before.replica} is already PRIMARY")
        seconds, markers, how = loss_window(ctx, before, old)
        ctx.log(f"potential loss window up to {seconds} s ({how})")
        after, took, failed = send_and_wait(ctx, session, before.replica, sql)
    evidence = {"potential_loss_window_seconds": seconds, "last_markers": markers}
    if after is None or failed:
        return fail(failed, **evidence)
    row = reported_row(ctx, after)
    data: dict[str, Any] = {
        "statement": sql,
        "replica": after.replica,
        "promotion_seconds": round(took, 3),
        "caught_up_to": lsn_text(row.get("recovery_lsn")),
        "marker_after": lsn_text(row.get("last_hardened_lsn")),
        **evidence,
        "guard_overridden": overridden,
    }
    if seconds is None:
        data["marker_unavailable"] = True
    resume = " ".join(resume_sql(n) for n in sorted(before.databases))
    detail = (
        f"{after.replica} is PRIMARY {took:.3f} s after {sql} (caught up to LSN "
        f"{data['caught_up_to']}); potential loss window up to {seconds} s ({how}). The former "
        f"primary's databases stay suspended when it is back; a failback resumes them ({resume}) "
        "and then fails back."
    )
    if overridden:
        detail = f"Old-primary guard overridden by the operator ({guard.detail}). {detail}"
    return StepResult(True, detail, data)


def target_is_primary(ctx: ExecutionContext) -> StepResult:
    """The target is an ONLINE PRIMARY and the old primary, if it answers, is not."""
    target, other = sites(ctx)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        new, error = read_local(ctx, target)
        if (new is not None and is_online_primary(new)) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS * 4)
    if new is None or not is_online_primary(new):
        return fail(f"{target} replica is not an ONLINE PRIMARY: {new.role if new else error}")
    row = reported_row(ctx, new)
    data: dict[str, Any] = {
        "caught_up_to": lsn_text(row.get("recovery_lsn")),
        "marker_after": lsn_text(row.get("last_hardened_lsn")),
    }
    old, old_error = read_local(ctx, other)
    if old is not None and old.role == "PRIMARY":
        return fail(f"{old.replica} still answers PRIMARY: two primaries", **data)
    if old is None:
        note = f"the former primary is not reachable ({old_error}); when it is back"
    else:
        suspended = {n: d.get("suspend_reason_desc") for n, d in old.databases.items()}
        data["old_primary"] = {"role": old.role, "suspended": suspended}
        note = f"{old.replica} is {old.role} with suspended databases {suspended};"
    detail = (
        f"{new.replica} is PRIMARY; {note} its databases stay suspended until "
        "ALTER DATABASE [db] SET HADR RESUME (run a failback)."
    )
    return StepResult(True, detail, data)


# -- drill -----------------------------------------------------------------------------------


def rpo_target(ctx: ExecutionContext) -> float:
    """The resource's RPO target (the core puts it on the target), else the default 60 s."""
    value = ctx.target.rpo_target_seconds
    return float(value) if value else DEFAULT_RPO_SECONDS


def consistency_probe(ctx: ExecutionContext) -> StepResult:
    """Read-only: the primary's last hardened LSN per database, then poll the secondary until
    it has redone past every one; the time taken is the measured RPO."""
    roles = ctx.state.get("roles_before") or {}
    primary = next((site for site, role in roles.items() if role == "PRIMARY"), "primary")
    secondary = "dr" if primary == "primary" else "primary"
    target = rpo_target(ctx)
    limit = min(target, MAX_PROBE_SECONDS)
    # Both sessions are open before the clock starts: login time is not replay time.
    with ReplicaSession(ctx.target, primary) as p, ReplicaSession(ctx.target, secondary) as d:
        started = time.monotonic()
        source = p.local_state()
        if source.role != "PRIMARY":
            return fail(f"{source.replica} is {source.role}: roles changed during the drill")
        marks = {
            n: int(row["last_hardened_lsn"])
            for n, row in source.databases.items()
            if row.get("last_hardened_lsn") is not None
        }
        if not marks:
            return fail("marker unavailable on the primary", marker_unavailable=True)
        while True:
            replica = d.local_state()
            redone = {n: replica.databases.get(n, {}).get("last_redone_lsn") for n in marks}
            behind = {n: m for n, m in marks.items() if int(redone[n] or 0) < m}
            elapsed = time.monotonic() - started
            if not behind or elapsed >= limit:
                break
            time.sleep(POLL_SECONDS)
    name = pick_database(dict(ctx.target.connection), list(marks)) or ""
    data: dict[str, Any] = {
        "rpo_target_seconds": target,
        "probe_marker": str(marks.get(name)),
        "dr_redone_lsn": lsn_text(redone.get(name)),
        "primary": source.replica,
        "secondary": replica.replica,
    }
    if behind:
        behind_text = {n: str(m) for n, m in behind.items()}
        return fail(f"{replica.replica} had not redone past {behind_text} in {limit:g} s", **data)
    data["rpo_measured_seconds"] = round(elapsed, 3)
    detail = (
        f"{replica.replica} redid past the primary's hardened LSN in {elapsed:.3f} s "
        f"(RPO target {target:g} s); no marker was written"
    )
    return StepResult(elapsed <= target, detail, data)


def roles_unchanged(ctx: ExecutionContext) -> StepResult:
    """The drill changed nothing: the roles are those ``replicas_reachable`` saw."""
    obs = observe_now(ctx)
    roles = {s.site: str(s.details.get("role")) for s in (obs.primary, obs.dr)}
    before = ctx.state.get("roles_before")
    if before and roles != before:
        return fail(f"roles changed during the drill: {before} -> {roles}", roles=roles)
    return StepResult(True, f"roles unchanged: {roles}", {"roles": roles})
