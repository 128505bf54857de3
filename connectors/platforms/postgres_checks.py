"""Read-only prechecks and postchecks of the PostgreSQL plans, the failover guard (invariant 10),
the data-loss window, and the "new primary takes writes" probe. Nothing here changes the
target (the probe commits an empty read-write transaction).

Checks built on ``observe()`` get it passed in (``Observe``) so that this module does not import
the connector class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from connectors.contract import (
    ExecutionContext,
    Observation,
    Replication,
    Role,
    SideObservation,
    StepResult,
    Target,
)
from connectors.platforms import postgres_actions as actions
from connectors.platforms.postgres_exec import (
    error_text,
    execute_session,
    fence_state,
    limits,
    nodes,
    other,
    poll,
    probe,
)
from connectors.platforms.postgres_read import jsonable, lsn_int
from connectors.platforms.postgres_steps import new_old, show_read_only, since

Observe = Callable[[Target], Observation]
Check = Callable[[ExecutionContext], StepResult]


def side(obs: Observation, site: str) -> SideObservation:
    return obs.primary if site == "primary" else obs.dr


def _sites(ctx: ExecutionContext) -> tuple[str, str]:
    """(site that ends up primary, site it takes over from)."""
    return ctx.promote_site, other(ctx.promote_site)


def summary(obs: Observation) -> dict[str, Any]:
    return jsonable(
        {
            "primary_site_role": str(obs.primary.role),
            "dr_site_role": str(obs.dr.role),
            "replication": str(obs.replication),
            "lag_seconds": obs.lag_seconds,
            "lag_bytes": obs.lag_bytes,
            "primary_marker": obs.primary_marker,
            "dr_marker": obs.dr_marker,
            "notes": obs.notes[:10],
        }
    )


def both_reachable(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        ctx.state.setdefault("started_at", time.time())
        obs = observe(ctx.target)
        down = [s for s in (obs.primary, obs.dr) if not s.reachable]
        if down:
            text = "; ".join(f"{s.site} node {s.endpoint}: {s.outcome} ({s.error})" for s in down)
            return StepResult(False, text, summary(obs))
        return StepResult(
            True,
            f"both nodes answer (primary site: {obs.primary.role}, DR site: {obs.dr.role})",
            summary(obs),
        )

    return run


def roles_as_expected(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        to, frm = _sites(ctx)
        obs = observe(ctx.target)
        new, old = side(obs, to), side(obs, frm)
        if new.role == Role.PRIMARY:
            return StepResult(False, f"the {to} node is already the primary: nothing to switch")
        if old.role != Role.PRIMARY or new.role != Role.STANDBY:
            return StepResult(
                False,
                f"expected the {frm} node primary and the {to} node standby; seen "
                f"{frm}: {old.role}, {to}: {new.role}",
                summary(obs),
            )
        return StepResult(True, f"{frm} node is primary, {to} node its standby", summary(obs))

    return run


def standby_streaming(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        obs = observe(ctx.target)
        if obs.replication != Replication.STREAMING:
            why = "; ".join(obs.notes) or "no details"
            return StepResult(False, f"replication is {obs.replication}: {why}", summary(obs))
        return StepResult(True, "the standby is streaming", summary(obs))

    return run


def lag_within_threshold(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        limit = limits(ctx.target).max_lag_seconds
        obs = observe(ctx.target)
        data = {**summary(obs), "max_lag_seconds": limit}
        standby = side(obs, ctx.promote_site)
        delay = str(standby.details.get("recovery_min_apply_delay") or "0")
        if delay not in ("0", "0ms"):
            return StepResult(
                False,
                f"the standby applies WAL late (recovery_min_apply_delay = {delay}): it would "
                "not catch up while the primary is fenced",
                data,
            )
        if obs.lag_seconds is None:
            return StepResult(False, "lag cannot be measured", data)
        if obs.lag_seconds > limit:
            return StepResult(
                False,
                f"lag {obs.lag_seconds:.1f} s ({obs.lag_bytes} bytes) is over {limit:g} s",
                data,
            )
        return StepResult(
            True, f"lag {obs.lag_seconds:.1f} s ({obs.lag_bytes} bytes) <= {limit:g} s", data
        )

    return run


def timeline_match(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        obs = observe(ctx.target)
        tl = {s.site: s.details.get("timeline") for s in (obs.primary, obs.dr)}
        if tl["primary"] is None or tl["primary"] != tl["dr"]:
            return StepResult(False, f"timelines differ: {tl}", {"timelines": tl})
        return StepResult(True, f"both on timeline {tl['primary']}", {"timelines": tl})

    return run


def host_actions_configured(required: tuple[str, ...]) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        conn = ctx.target.connection
        present = sorted((conn.get("host_actions") or {}).keys())
        problems = [actions.problem(conn, name) for name in required]
        problems += [actions.problem(conn, name) for name in present if name not in required]
        problems = [p for p in problems if p]
        if problems:
            return StepResult(False, "; ".join(problems), {"host_actions": present})
        return StepResult(True, f"host actions: {', '.join(present)}", {"host_actions": present})

    return run


# -- failover ---------------------------------------------------------------------------------


def promote_node_ready(ctx: ExecutionContext) -> StepResult:
    ctx.state.setdefault("started_at", time.time())
    state = probe(ctx.target, nodes(ctx.target)[ctx.promote_site])
    if not state.reachable:
        return StepResult(False, state.describe())
    if not state.in_recovery:
        return StepResult(False, f"{state.describe()}: it is already the primary")
    return StepResult(True, f"{state.describe()}, replayed up to {state.lsn}")


def _takes_no_writes(ctx: ExecutionContext, site: str, consequence: str) -> StepResult:
    """Passes when the node cannot take writes: unreachable, a standby, or fenced. Otherwise an
    override the operator may choose whatever the policy says (invariant 10; recorded)."""
    node = nodes(ctx.target)[site]
    state = probe(ctx.target, node)
    if not state.reachable:
        return StepResult(True, f"{state.describe()}: it cannot take writes from here")
    if state.in_recovery:
        return StepResult(True, f"{state.describe()}: it does not take writes")
    fenced = fence_state(ctx.target, node)
    if fenced:
        return StepResult(True, f"{state.describe()} but fenced (read-only default)")
    why = "accepts writes" if fenced is False else "may accept writes (its fence cannot be read)"
    return StepResult(
        False,
        f"{state.describe()} and {why}: {consequence}",
        {"node": node.endpoint, "node_lsn": state.lsn},
        overridable=True,
        override_needs_policy=False,
    )


def old_primary_not_writable(ctx: ExecutionContext) -> StepResult:
    """Invariant 10: no promotion while the node it replaces still takes writes."""
    return _takes_no_writes(
        ctx,
        other(ctx.promote_site),
        "promoting now would leave two writable primaries. Use a switchover, fence or stop "
        "it, or override this check",
    )


def failback_direction(ctx: ExecutionContext) -> StepResult:
    if ctx.promote_site != "primary":
        return StepResult(
            False,
            "a failback returns the configured primary site to primary; to move to the DR site "
            "request a switchover",
        )
    return StepResult(True, "the primary-site node is to become primary again")


def current_primary_reachable(ctx: ExecutionContext) -> StepResult:
    ctx.state.setdefault("started_at", time.time())
    state = probe(ctx.target, nodes(ctx.target)[other(ctx.promote_site)])
    if not state.reachable or state.in_recovery:
        return StepResult(False, f"{state.describe()}: it must be the running primary")
    return StepResult(True, f"{state.describe()} at {state.lsn}")


def original_primary_not_writable(ctx: ExecutionContext) -> StepResult:
    return _takes_no_writes(
        ctx,
        ctx.promote_site,
        "it runs as a second primary; rejoining it as a standby (pg_rewind) discards what it "
        "wrote since the other node was promoted. Stop it, or override to discard",
    )


def standby_ready(observe: Observe) -> Check:
    """After the failback's prepare step: wait (up to the catch-up limit) until the standby
    streams on the primary's timeline with lag under the threshold."""

    def run(ctx: ExecutionContext) -> StepResult:
        lim = limits(ctx.target)

        def ready() -> Observation | None:
            obs = observe(ctx.target)
            tl = {s.details.get("timeline") for s in (obs.primary, obs.dr)}
            ok = (
                obs.replication == Replication.STREAMING
                and obs.lag_seconds is not None
                and obs.lag_seconds <= lim.max_lag_seconds
                and len(tl) == 1
            )
            return obs if ok else None

        obs = poll(ready, lim.catch_up_seconds, every=0.2)
        if obs is None:
            last = observe(ctx.target)
            return StepResult(False, f"standby not ready: {summary(last)}", summary(last))
        return StepResult(True, f"standby streaming, lag {obs.lag_seconds:.1f} s", summary(obs))

    return run


def loss_window(ctx: ExecutionContext) -> StepResult:
    """What may be lost: everything the old primary committed after the last transaction the
    standby replayed. With the old primary readable the LSNs settle it; without it, the
    window runs from the standby's last replayed commit (primary clock) to now (standby clock)."""
    found = nodes(ctx.target)
    new = probe(ctx.target, found[ctx.promote_site])
    old = probe(ctx.target, found[other(ctx.promote_site)])
    if not new.reachable:
        return StepResult(False, new.describe())
    received = new.receive_lsn or new.lsn
    markers: dict[str, Any] = {
        "standby_receive_lsn": new.receive_lsn,
        "standby_replay_lsn": new.lsn,
        "standby_last_replayed_commit_at": jsonable(new.last_replay_at),
    }
    data: dict[str, Any] = {"last_markers": markers}
    window: float | None = None
    if old.reachable and old.in_recovery is False:
        markers["primary_current_lsn"] = old.lsn
        behind = (lsn_int(old.lsn) or 0) - (lsn_int(received) or 0)
        data["lag_bytes"] = max(0, behind)
        if behind <= 0:
            window, data["caught_up_to"] = 0.0, received
        elif new.last_replay_at and old.server_time:
            window = (old.server_time - new.last_replay_at).total_seconds()
    else:
        data["marker_unavailable"] = True
        if new.last_replay_at and new.server_time:
            window = (new.server_time - new.last_replay_at).total_seconds()
    if window is not None:
        data["potential_loss_window_seconds"] = round(max(0.0, window), 3)
        text = f"potential loss window up to {max(0.0, window):.3f} s"
    else:
        text = "loss window unknown (no replayed commit time): cannot prove completeness"
    if data.get("marker_unavailable"):
        text += f"; the old primary cannot be read ({old.describe()})"
    return StepResult(True, f"{text}; standby received up to {received}", data)


# -- postchecks -------------------------------------------------------------------------------


def roles_swapped(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        to, frm = _sites(ctx)

        def swapped() -> Observation | None:
            obs = observe(ctx.target)
            ok = (
                side(obs, to).role == Role.PRIMARY
                and side(obs, frm).role == Role.STANDBY
                and obs.replication == Replication.STREAMING
            )
            return obs if ok else None

        obs = poll(swapped, 10.0, every=0.2)
        if obs is None:
            obs = observe(ctx.target)
            return StepResult(False, f"roles not as expected: {summary(obs)}", summary(obs))
        return StepResult(True, f"{to} node primary, {frm} node streaming from it", summary(obs))

    return run


def replication_caught_up(observe: Observe) -> Check:
    def run(ctx: ExecutionContext) -> StepResult:
        obs = poll(lambda: o if (o := observe(ctx.target)).lag_bytes == 0 else None, 10.0, 0.2)
        last = obs or observe(ctx.target)
        data = {**summary(last), "marker_after": last.primary_marker}
        if ctx.state.get("started_at") is not None:
            data["total_seconds"] = round(time.time() - float(ctx.state["started_at"]), 3)
        if obs is None:
            return StepResult(False, f"standby still {last.lag_bytes} bytes behind", data)
        return StepResult(True, f"standby caught up at {last.primary_marker}", data)

    return run


# -- the new primary takes writes (switchover step, failover postcheck) ------------------------


def verify_writable(ctx: ExecutionContext) -> StepResult:
    """A read-write transaction that takes a transaction id commits on the new primary (its
    commit record is written and flushed), and new sessions get a read-write default."""
    new, _ = new_old(ctx)

    def attempt() -> tuple[int, str, bool] | None:
        try:
            with execute_session(ctx.target, new, 10) as db:
                with db.transaction():
                    db.execute("SET TRANSACTION READ WRITE")
                    xid = (db.execute("SELECT txid_current()").fetchone() or [0])[0]
                lsn = (db.execute("SELECT pg_current_wal_lsn()::text").fetchone() or [""])[0]
                return int(xid), lsn, show_read_only(db)
        except psycopg.Error as exc:
            ctx.state["writable_error"] = error_text(exc, ctx.target, new)
            return None

    found = poll(attempt, 5.0, every=0.05)
    if found is None:
        return StepResult(
            False, f"{new.endpoint} does not accept a write: {ctx.state.get('writable_error', '')}"
        )
    xid, lsn, read_only = found
    if read_only:
        return StepResult(
            False,
            f"{new.endpoint} writes, but default_transaction_read_only "
            "is on for new sessions: applications cannot write",
        )
    now = time.time()
    ctx.state["writable_at"] = now
    unavailable = since(ctx, "fenced_at", now)
    data: dict[str, Any] = {"marker_after": lsn, "probe_txid": xid}
    detail = f"{new.endpoint} committed a read-write transaction (txid {xid}) at {lsn}"
    if unavailable is not None:
        data["write_unavailable_seconds"] = unavailable
        data["rto_measured_seconds"] = unavailable
        detail += f"; writes were unavailable for {unavailable:.3f} s (fence to writable)"
    elif ctx.state.get("started_at") is not None:
        data["execution_to_writable_seconds"] = since(ctx, "started_at", now)
    return StepResult(True, detail, data)
