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

import time

from connectors.contract import (
    ExecutionContext,
    NotSupported,
    Phase,
    PlanStep,
    StepResult,
    Target,
    Verified,
)
from connectors.platforms.mssql import ReplicaSession
from connectors.platforms.mssql_failover import (
    consistency_probe,
    forced_failover,
    old_primary_not_writable,
    potential_data_loss,
    roles_unchanged,
    target_is_primary,
    target_reachable,
)
from connectors.platforms.mssql_steps import (
    GUARD,
    MAX_PROBE_SECONDS,
    RESUME_SECONDS,
    SETTLE_SECONDS,
    STATEMENT_SECONDS,
    Check,
    ag_name,
    all_synchronized,
    bracketed,
    check_healthy,
    check_lag,
    check_reachable,
    check_synchronized,
    fail,
    failover_sql,
    lsn_text,
    observe_seconds,
    old_primary_synchronized,
    read_local,
    reported_row,
    resume_sql,
    roles_swapped,
    send_and_wait,
    sites,
    verify_promoted,
    wait_until,
)

__all__ = ["bracketed", "build", "failover_sql", "resume_sql"]


# -- the state-changing steps of a switchover or failback ------------------------------------


def planned_failover(ctx: ExecutionContext) -> StepResult:
    """``ALTER AVAILABILITY GROUP [ag] FAILOVER;`` on the target, execution login. Re-reads the
    target in the same session first and does not send the statement unless it is still a
    SYNCHRONIZED synchronous-commit SECONDARY (the precheck may be minutes old)."""
    target, _ = sites(ctx)
    sql = failover_sql(ag_name(ctx))
    with ReplicaSession(ctx.target, target, "execute") as session:
        before = session.local_state()
        if before.role != "SECONDARY" or before.availability_mode != "SYNCHRONOUS_COMMIT":
            return fail(f"not sent: {before.replica} is {before.role}, {before.availability_mode}")
        if not all_synchronized(before):
            states = {n: d.get("synchronization_state_desc") for n, d in before.databases.items()}
            return fail(f"not sent: {before.replica} is not SYNCHRONIZED: {states}")
        after, unavailable, failed = send_and_wait(ctx, session, before.replica, sql)
    if after is None or failed:
        return fail(failed)
    row, was = reported_row(ctx, after), reported_row(ctx, before)
    caught_up = lsn_text(row.get("recovery_lsn"))
    data = {
        "statement": sql,
        "replica": after.replica,
        "write_unavailable_seconds": round(unavailable, 3),
        "caught_up_to": caught_up,
        "marker_after": lsn_text(row.get("last_hardened_lsn")),
        "redone_before": lsn_text(was.get("last_redone_lsn")),
    }
    marker_before = ctx.state.get("marker_before")
    if marker_before and caught_up:
        data["covers_marker_before"] = int(caught_up) >= int(marker_before)
    detail = (
        f"{after.replica} is PRIMARY {unavailable:.3f} s after {sql} (caught up to LSN {caught_up})"
    )
    return StepResult(ok=True, detail=detail, data=data)


def resume_data_movement(ctx: ExecutionContext) -> StepResult:
    """``ALTER DATABASE [db] SET HADR RESUME;`` for each suspended database on the replica
    going back to primary, then wait until they are SYNCHRONIZED. Safe to repeat."""
    target, _ = sites(ctx)
    with ReplicaSession(ctx.target, target, "execute") as session:
        before = session.local_state()
        suspended = sorted(n for n, d in before.databases.items() if d.get("is_suspended"))
        if not suspended:
            return StepResult(ok=True, detail=f"nothing suspended on {before.replica}")
        if before.role != "SECONDARY":
            return fail(f"not sent: {before.replica} is {before.role}, not SECONDARY")
        sent = []
        for name in suspended:
            sql = resume_sql(name)
            ctx.log(f"{before.replica}: {sql}")
            session.run(sql)
            sent.append(sql)
        started = time.monotonic()
        after, synced = wait_until(session, all_synchronized, RESUME_SECONDS)
    data = {
        "statements": sent,
        "resumed": suspended,
        "seconds": round(time.monotonic() - started, 3),
    }
    states = {n: d.get("synchronization_state_desc") for n, d in after.databases.items()}
    if not synced:
        return fail(
            f"resumed {suspended} but {after.replica} is not SYNCHRONIZED: {states}", **data
        )
    return StepResult(
        ok=True, detail=f"resumed {suspended} on {after.replica}: {states}", data=data
    )


def verify_resumed(ctx: ExecutionContext) -> Verified:
    """After a crash: no database suspended on the target -> done (safe to run again else)."""
    state, _ = read_local(ctx, sites(ctx)[0])
    if state is None:
        return Verified.UNKNOWN
    suspended = any(d.get("is_suspended") for d in state.databases.values())
    return Verified.NOT_DONE if suspended else Verified.DONE


# -- plans -----------------------------------------------------------------------------------


def switch_steps(target: Target, failback: bool) -> list[PlanStep]:
    """switchover (to ``promote_site``) or failback (to the primary site, resuming first)."""
    seconds = observe_seconds(target)

    def pre(name: str, run: Check, description: str) -> PlanStep:
        return PlanStep(name, Phase.PRECHECK, run, description, timeout_seconds=seconds)

    steps = [
        pre("replicas_reachable", check_reachable, "Both replicas answer (monitoring login)."),
        pre(
            "target_synchronized",
            lambda ctx: check_synchronized(ctx, failback),
            "The replica to promote is a synchronous-commit SECONDARY, SYNCHRONIZED for every "
            "database" + (" (suspended ones are resumed first)." if failback else "."),
        ),
        pre(
            "lag_near_zero", lambda ctx: check_lag(ctx, failback), "Estimated data loss near zero."
        ),
        pre(
            "ag_healthy",
            lambda ctx: check_healthy(ctx, failback),
            "Replication streaming, healthy.",
        ),
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


def failover_steps(target: Target) -> list[PlanStep]:
    """Forced failover to ``promote_site``, behind the invariant-10 guard (mssql_failover)."""
    seconds = observe_seconds(target)
    return [
        PlanStep(
            "target_reachable",
            Phase.PRECHECK,
            target_reachable,
            "The replica to promote answers and is not PRIMARY.",
            timeout_seconds=seconds,
        ),
        PlanStep(
            GUARD,
            Phase.PRECHECK,
            old_primary_not_writable,
            "The old primary is unreachable or no longer PRIMARY (else an explicit operator "
            "override is needed: it may be accepting writes).",
            timeout_seconds=2 * seconds,
        ),
        PlanStep(
            "potential_data_loss",
            Phase.PRECHECK,
            potential_data_loss,
            "Potential loss window from the last markers seen (evidence).",
            timeout_seconds=2 * seconds,
        ),
        PlanStep(
            "forced_failover",
            Phase.STEP,
            forced_failover,
            "DANGEROUS: ALTER AVAILABILITY GROUP [ag] FORCE_FAILOVER_ALLOW_DATA_LOSS on the "
            "replica to promote. Commits it has not hardened are lost; the former primary's "
            "databases stay suspended until a failback resumes them.",
            changes_state=True,
            idempotent=False,
            verify=verify_promoted,
            timeout_seconds=STATEMENT_SECONDS + SETTLE_SECONDS + 3 * seconds,
        ),
        PlanStep(
            "target_is_primary",
            Phase.POSTCHECK,
            target_is_primary,
            "The promoted replica is an ONLINE PRIMARY; the old primary, if seen, is not.",
            timeout_seconds=SETTLE_SECONDS + 2 * seconds,
        ),
    ]


def drill_steps(target: Target) -> list[PlanStep]:
    """Read-only drill: replay of the primary's hardened LSN timed on the secondary."""
    seconds = observe_seconds(target)
    return [
        PlanStep(
            "replicas_reachable",
            Phase.PRECHECK,
            check_reachable,
            "Both replicas answer; exactly one PRIMARY.",
            timeout_seconds=seconds,
        ),
        PlanStep(
            "replication_streaming",
            Phase.PRECHECK,
            lambda ctx: check_healthy(ctx, False),
            "Replication streaming, both replicas healthy.",
            timeout_seconds=seconds,
        ),
        PlanStep(
            "consistency_probe",
            Phase.STEP,
            consistency_probe,
            "Read-only probe: the primary's hardened LSN, then the DR replica polled until it "
            "has redone past it (measured RPO). No marker row is written: the lab double has "
            "no writable table; roles never change.",
            timeout_seconds=MAX_PROBE_SECONDS + 3 * seconds,
        ),
        PlanStep(
            "roles_unchanged",
            Phase.POSTCHECK,
            roles_unchanged,
            "The roles are as before the drill.",
            timeout_seconds=seconds,
        ),
    ]


def build(kind: str, target: Target) -> list[PlanStep]:
    """The plan for ``kind``. No I/O and no credentials: only the names are checked here."""
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
