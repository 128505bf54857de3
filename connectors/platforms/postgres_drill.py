"""The PostgreSQL drill: a readiness exercise that never changes roles. A marker row is written
on the current primary (``bc_drill``, created on first use with the execution account) and the
standby is polled every 10 ms until the row is visible; the measured RPO is the time from the
commit returning on the primary to the row being readable on the standby. The rows are kept as
evidence (one small row per drill).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg

from connectors.contract import ExecutionContext, Role, StepResult, Verified
from connectors.platforms.postgres_checks import Check, Observe, side, summary
from connectors.platforms.postgres_exec import (
    connect,
    execute_session,
    limits,
    nodes,
    other,
    poll,
    probe,
)


def write_drill_marker(ctx: ExecutionContext) -> StepResult:
    """One row in bc_drill on the current primary (the table is created on first use)."""
    found = nodes(ctx.target)
    primaries = [s for s, n in found.items() if probe(ctx.target, n).in_recovery is False]
    if len(primaries) != 1:
        return StepResult(False, f"expected exactly one primary, found {primaries or 'none'}")
    site = ctx.state.setdefault("drill_primary", primaries[0])
    if site != primaries[0]:
        return StepResult(False, f"the primary moved from {site} to {primaries[0]}")
    marker = ctx.state.setdefault("drill_id", uuid.uuid4().hex)
    with execute_session(ctx.target, found[site], 10) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS bc_drill (id text PRIMARY KEY, "
            "at timestamptz NOT NULL, note text)"
        )
        db.execute(
            "INSERT INTO bc_drill (id, at, note) VALUES (%s, clock_timestamp(), %s) "
            "ON CONFLICT (id) DO NOTHING",
            (marker, f"bcservice drill of {ctx.target.name}"),
        )
        lsn = (db.execute("SELECT pg_current_wal_lsn()::text").fetchone() or [""])[0]
    ctx.state.setdefault("marker_written_at", time.time())  # after the commit returned
    return StepResult(
        True,
        f"drill marker {marker} committed on the {site} node at {lsn}",
        {"drill_marker": marker, "marker_before": lsn},
    )


def verify_drill_marker(ctx: ExecutionContext) -> Verified:
    site, marker = ctx.state.get("drill_primary"), ctx.state.get("drill_id")
    if not site or not marker:
        return Verified.NOT_DONE  # the step did not get as far as choosing its marker
    try:
        with execute_session(ctx.target, nodes(ctx.target)[site], 10) as db:
            row = db.execute("SELECT 1 FROM bc_drill WHERE id = %s", (marker,)).fetchone()
    except psycopg.errors.UndefinedTable:
        return Verified.NOT_DONE
    except psycopg.Error:
        return Verified.UNKNOWN
    return Verified.DONE if row else Verified.NOT_DONE


def marker_replayed(ctx: ExecutionContext) -> StepResult:
    """Poll the standby every 10 ms until the marker row is visible; the measured RPO is the
    time from the commit returning on the primary to the row being readable on the standby."""
    target = limits(ctx.target).rpo_target_seconds
    site = other(ctx.state["drill_primary"])
    node = nodes(ctx.target)[site]
    marker, written = ctx.state["drill_id"], float(ctx.state["marker_written_at"])
    with connect(ctx.target, node, "execute") as db:
        db.execute("SET default_transaction_read_only = on")

        def visible() -> str | None:
            try:
                row = db.execute(
                    "SELECT pg_last_wal_replay_lsn()::text FROM bc_drill WHERE id = %s",
                    (marker,),
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None  # the CREATE TABLE has not been replayed yet
            return row[0] if row else None

        remaining = max(0.5, written + target - time.time())
        seen = poll(visible, remaining)
    rpo = time.time() - written
    data: dict[str, Any] = {"drill_marker": marker, "rpo_target_seconds": target}
    if seen is None:
        return StepResult(
            False,
            f"marker {marker} not visible on the {site} node {rpo:.1f} s after its commit "
            f"(RPO target {target:g} s): drill failed",
            data,
        )
    data.update(rpo_measured_seconds=round(rpo, 3), marker_after=seen)
    return StepResult(
        True,
        f"marker {marker} visible on the {site} node {rpo:.3f} s after its commit "
        f"(RPO target {target:g} s): drill passed",
        data,
    )


def roles_unchanged(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        obs = observe(ctx.target)
        site = ctx.state.get("drill_primary")
        data = {**summary(obs), "rto_measured": "not measured: a drill never promotes"}
        if site is None or side(obs, site).role != Role.PRIMARY:
            return StepResult(False, f"the primary is not the {site} node any more", data)
        if side(obs, other(site)).role != Role.STANDBY:
            return StepResult(False, f"the {other(site)} node is not a standby", data)
        return StepResult(True, f"roles unchanged: {site} node primary", data)

    return run
