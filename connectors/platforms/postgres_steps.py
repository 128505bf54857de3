"""The state-changing steps of the PostgreSQL plans, each with its ``verify`` for crash recovery.

Direction comes from the context, never from the configuration: the node at
``ctx.promote_site`` ends up primary ("new"), the other one is the node it takes over from
("old"). Timestamps that span steps (fence, promotion, writable, streaming) are wall-clock
seconds in ``ctx.state`` so that a resumed execution still reports honest windows. The exact SQL
and commands are listed in docs/connectors/postgres.md, "Executions".
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from connectors.contract import ExecutionContext, StepResult, Verified
from connectors.platforms import postgres_actions as actions
from connectors.platforms.postgres_exec import (
    Node,
    connect,
    credentials,
    error_text,
    execute_session,
    fence_state,
    limits,
    nodes,
    other,
    poll,
    probe,
    streams_from,
)

UNFENCE_SQL = (
    "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();"  # for messages
)


def new_old(ctx: ExecutionContext) -> tuple[Node, Node]:
    found = nodes(ctx.target)
    return found[ctx.promote_site], found[other(ctx.promote_site)]


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def since(ctx: ExecutionContext, key: str, now: float) -> float | None:
    began = ctx.state.get(key)
    return rounded(now - float(began)) if began is not None else None


# -- fence ----------------------------------------------------------------------------------


def fence_primary(ctx: ExecutionContext) -> StepResult:
    """No new writes on the old primary: read-only default for every transaction, then end every
    other client session (an open transaction keeps its read-write mode; a terminated client
    reconnects into a read-only default)."""
    _, old = new_old(ctx)
    with execute_session(ctx.target, old) as db:
        row = db.execute("SELECT pg_is_in_recovery(), pg_current_wal_lsn()::text").fetchone()
        if row is None or row[0]:
            return StepResult(False, f"{old.site} node {old.endpoint} is not a primary")
        ctx.state.setdefault("marker_before", row[1])
        # Writes stop being accepted from here (a rerun after a crash keeps the first time).
        ctx.state.setdefault("fenced_at", time.time())
        db.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        db.execute("SELECT pg_reload_conf()")
        # Our backend applies the reload before its next command; wait until it has.
        poll(lambda: True if show_read_only(db) else None, 2.0)
        row = db.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 1000)), count(*) "
            "FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
        overriding = [
            r[0]
            for r in db.execute(
                "SELECT rolname FROM pg_roles WHERE array_to_string(rolconfig, ',') "
                "ILIKE '%default_transaction_read_only=off%' ORDER BY rolname"
            ).fetchall()
        ]
    terminated, seen = (row or (0, 0))[0], (row or (0, 0))[1]
    detail = (
        f"{old.site} node {old.endpoint} fenced: default_transaction_read_only = on, "
        f"{terminated} of {seen} other client sessions terminated"
    )
    if overriding:
        # Their new sessions start read-write despite the fence; the catch-up wait still
        # protects what they commit before the stop/promotion, but say it.
        detail += f"; warning: roles {', '.join(overriding)} override the read-only default"
    ctx.log(detail)
    return StepResult(
        True,
        detail,
        {
            "marker_before": ctx.state["marker_before"],
            "terminated_sessions": terminated,
            "roles_overriding_fence": overriding,
        },
    )


def show_read_only(db: psycopg.Connection) -> bool:
    row = db.execute("SHOW default_transaction_read_only").fetchone()
    return bool(row and row[0] == "on")


def verify_fence(ctx: ExecutionContext) -> Verified:
    _, old = new_old(ctx)
    return _verdict(fence_state(ctx.target, old))


def _verdict(flag: bool | None) -> Verified:
    return Verified.UNKNOWN if flag is None else (Verified.DONE if flag else Verified.NOT_DONE)


# -- catch up ---------------------------------------------------------------------------------


def wait_for_catch_up(ctx: ExecutionContext) -> StepResult:
    """Close the fenced primary's WAL with pg_switch_wal() (flushed, and everything committed
    before it lies before its end) and wait until the standby has replayed up to it."""
    new, old = new_old(ctx)
    with execute_session(ctx.target, old) as db:
        if not show_read_only(db):
            return StepResult(False, f"{old.endpoint} is no longer fenced: stopped before promote")
        final = (db.execute("SELECT pg_switch_wal()::text").fetchone() or [None])[0]
    ctx.state["final_lsn"] = final
    began = time.monotonic()
    with connect(ctx.target, new, "monitor") as db:

        def replayed() -> str | None:
            row = db.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text",
                (final,),
            ).fetchone()
            return row[1] if row and row[0] else None

        seconds = limits(ctx.target).catch_up_seconds
        caught = poll(replayed, seconds)
        if caught is None:
            last = (db.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone() or [None])[0]
            return StepResult(
                False,
                f"the standby {new.endpoint} replayed up to {last}, not the fenced primary's "
                f"final LSN {final}, within {seconds:g} s. Nothing was promoted; the old primary "
                f"is still fenced (to lift: {UNFENCE_SQL})",
                {"final_lsn": final, "replayed_lsn": last},
            )
    took = time.monotonic() - began
    return StepResult(
        True,
        f"standby {new.endpoint} replayed up to {caught} >= final LSN {final} in {took:.3f} s",
        {"caught_up_to": final, "replayed_lsn": caught, "catch_up_seconds": rounded(took)},
    )


# -- stop the old primary (optional) ----------------------------------------------------------


def stop_old_primary(ctx: ExecutionContext) -> StepResult:
    """Clean shutdown of the fenced, caught-up primary through the ``stop`` host action. Its
    shutdown checkpoint streams to the standby before it exits, so after the promotion the old
    primary has nothing the new timeline lacks and rejoins without a rewind."""
    new, old = new_old(ctx)
    result = actions.run(
        ctx.target.connection,
        "stop",
        _values(ctx, act_on=old, new_primary=new),
        credentials(ctx.target, "execute"),
    )
    if not result.ok:
        # pg_ctl stop on a stopped server fails; the state we want is reached all the same.
        if probe(ctx.target, old).refused:
            return StepResult(
                True, result.summary() + f"; {old.endpoint} refuses connections: it is down"
            )
        return StepResult(
            False,
            result.summary() + f". Nothing was promoted; {old.endpoint} is fenced and may be "
            "stopped",
        )
    return StepResult(True, result.summary(), {"host_action": result.command})


def verify_stopped(ctx: ExecutionContext) -> Verified:
    """Refused connections mean the server is down. Anything else: not proven, and the stop is
    safe to repeat, so NOT_DONE lets the runner run it again."""
    _, old = new_old(ctx)
    state = probe(ctx.target, old)
    return Verified.DONE if state.refused else Verified.NOT_DONE


# -- promote ----------------------------------------------------------------------------------


def promote(ctx: ExecutionContext) -> StepResult:
    """pg_promote(wait => false), then poll pg_is_in_recovery() every 5 ms: the same end as
    wait => true (which polls every 100 ms), up to ~95 ms sooner."""
    new, old = new_old(ctx)
    seconds = limits(ctx.target).promote_seconds
    with execute_session(ctx.target, new, seconds + 5) as db:
        if not (db.execute("SELECT pg_is_in_recovery()").fetchone() or [False])[0]:
            return StepResult(False, f"{new.endpoint} is not in recovery: it is already a primary")
        cleared = False
        if show_read_only(db):  # a fence left from an earlier role; apps must write here
            db.execute("ALTER SYSTEM RESET default_transaction_read_only")
            db.execute("SELECT pg_reload_conf()")
            cleared = True
        received = db.execute(
            "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text"
        ).fetchone() or (None, None)
        ctx.state["promote_started_at"] = time.time()
        began = time.monotonic()
        db.execute("SELECT pg_promote(wait => false)")
        unknown = (
            f"promotion of {new.endpoint} requested but not seen to finish ({{}}): state "
            "unknown, check the node before doing anything else"
        )
        try:
            done = poll(
                lambda: (
                    True
                    if not (db.execute("SELECT pg_is_in_recovery()").fetchone() or [True])[0]
                    else None
                ),
                seconds,
                every=0.005,
            )
            if not done:
                return StepResult(False, unknown.format(f"still in recovery after {seconds:g} s"))
            lsn, tli = db.execute(
                "SELECT pg_current_wal_lsn()::text, "
                "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
            ).fetchone() or (None, None)
        except psycopg.Error as exc:  # the request went out; what happened is not known
            return StepResult(False, unknown.format(error_text(exc, ctx.target, new)))
        took = time.monotonic() - began
    ctx.state["promoted_at"] = time.time()
    detail = f"{new.site} node {new.endpoint} promoted in {took:.3f} s (timeline {tli}, {lsn})"
    if cleared:
        detail += "; a leftover read-only default was reset first"
    return StepResult(
        True,
        detail,
        {
            "promote_seconds": rounded(took),
            "timeline": tli,
            "promoted_lsn": lsn,
            "received_before_promote": received[0],
            "replayed_before_promote": received[1],
            "old_primary": old.endpoint,
        },
    )


def verify_promoted(ctx: ExecutionContext) -> Verified:
    new, _ = new_old(ctx)
    state = probe(ctx.target, new)
    if not state.reachable:
        return Verified.UNKNOWN
    return Verified.NOT_DONE if state.in_recovery else Verified.DONE


# -- rejoin -----------------------------------------------------------------------------------


def rejoin_state(ctx: ExecutionContext, node: Node, upstream: Node) -> Verified:
    """DONE when ``node`` streams from ``upstream``; NOT_DONE when the upstream answers but the
    node does not stream from it (rejoining is safe to repeat); UNKNOWN when nobody answers."""
    if streams_from(probe(ctx.target, node), upstream):
        return Verified.DONE
    return Verified.NOT_DONE if probe(ctx.target, upstream).reachable else Verified.UNKNOWN


def rejoin(ctx: ExecutionContext, node: Node, upstream: Node) -> StepResult:
    """Make ``node`` a streaming standby of the primary ``upstream``: CHECKPOINT there (so that
    pg_rewind sees the new timeline in its control file), ensure the slot, run the ``rejoin``
    host action, wait until the node streams."""
    if rejoin_state(ctx, node, upstream) == Verified.DONE:
        return StepResult(True, f"{node.endpoint} already streams from {upstream.endpoint}")
    slot = str(ctx.target.connection.get("slot_name") or "")
    with execute_session(ctx.target, upstream, 300) as db:
        db.execute("CHECKPOINT")
        if slot:
            db.execute(
                "SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
                "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                (slot, slot),
            )
    result = actions.run(
        ctx.target.connection,
        "rejoin",
        _values(ctx, act_on=node, new_primary=upstream),
        credentials(ctx.target, "execute"),
    )
    if not result.ok:
        return StepResult(False, result.summary(), {"host_action": result.command})
    seconds = limits(ctx.target).streaming_seconds
    done = poll(
        lambda: True if rejoin_state(ctx, node, upstream) == Verified.DONE else None,
        seconds,
        every=0.02,
    )
    if not done:
        return StepResult(
            False,
            result.summary() + f"; but {node.endpoint} does not stream "
            f"from {upstream.endpoint} within {seconds:g} s",
        )
    now = time.time()
    ctx.state["streaming_at"] = now
    data: dict[str, Any] = {
        "host_action": result.command,
        "host_action_seconds": rounded(result.seconds),
    }
    for key, began in (
        ("streaming_after_promote_seconds", "promoted_at"),
        ("switchover_seconds", "fenced_at"),
    ):
        if ctx.state.get(began) is not None:
            data[key] = since(ctx, began, now)
    return StepResult(
        True, result.summary() + f"; {node.endpoint} streams from {upstream.endpoint}", data
    )


def rejoin_old_primary(ctx: ExecutionContext) -> StepResult:
    new, old = new_old(ctx)
    return rejoin(ctx, old, new)


def verify_rejoined(ctx: ExecutionContext) -> Verified:
    new, old = new_old(ctx)
    return rejoin_state(ctx, old, new)


def prepare_promote_node(ctx: ExecutionContext) -> StepResult:
    """Failback: make the node that is to become primary again a streaming standby of the
    current primary first (rewound if it diverged, e.g. after a failover)."""
    new, old = new_old(ctx)
    return rejoin(ctx, new, old)


def verify_prepared(ctx: ExecutionContext) -> Verified:
    new, old = new_old(ctx)
    return rejoin_state(ctx, new, old)


def _values(ctx: ExecutionContext, *, act_on: Node, new_primary: Node) -> dict[str, Any]:
    return {
        "node": act_on.site,
        "host": act_on.host,
        "port": act_on.port,
        "new_primary_node": new_primary.site,
        "new_primary_host": new_primary.host,
        "new_primary_port": new_primary.port,
        "slot": ctx.target.connection.get("slot_name") or "",
        "dbname": ctx.target.connection.get("dbname") or "postgres",
    }


# -- clear the fence --------------------------------------------------------------------------


def clear_fence(ctx: ExecutionContext) -> StepResult:
    """The rejoined node is a standby now; reset its read-only default so that it is writable
    if it is promoted later (ALTER SYSTEM works on a standby: it only writes a file)."""
    _, old = new_old(ctx)
    try:
        with execute_session(ctx.target, old, 10) as db:
            db.execute("ALTER SYSTEM RESET default_transaction_read_only")
            db.execute("SELECT pg_reload_conf()")
    except psycopg.Error as exc:
        return StepResult(False, f"could not clear the fence: {error_text(exc, ctx.target, old)}")
    return StepResult(True, f"{old.endpoint}: default_transaction_read_only reset")


def verify_unfenced(ctx: ExecutionContext) -> Verified:
    _, old = new_old(ctx)
    flag = fence_state(ctx.target, old)
    return Verified.UNKNOWN if flag is None else (Verified.NOT_DONE if flag else Verified.DONE)
