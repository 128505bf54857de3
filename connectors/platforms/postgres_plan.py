"""The PostgreSQL plans: which checks and steps each kind runs, in order, with their safety
declarations (state-changing, idempotent, how to verify after a crash) and timeouts.

- switchover: prechecks -> fence -> catch up -> [stop] -> promote -> writable -> rejoin ->
  clear the fence -> postchecks. Planned: no committed data is lost (the standby has replayed
  the fenced primary's final LSN before it is promoted).
- failback: the same switchover back to the configured primary site, after first making that
  site's node a streaming standby again (rewound if a failover left it diverged).
- failover: unplanned; refuses while the old primary takes writes (invariant 10, overridable),
  records the potential loss window, promotes, checks the new primary takes writes. No rejoin:
  the old primary is gone; a failback brings it back.
- drill: changes no roles; a marker row written on the primary is timed until the standby shows
  it (the measured RPO).

The ``stop`` step is planned only when a ``stop`` host action is configured: the old primary then
shuts down cleanly before the promotion, handing over its last WAL, and rejoins without a rewind.
"""

from __future__ import annotations

from connectors.contract import NotSupported, Phase, PlanStep, Target
from connectors.platforms import postgres_actions as actions
from connectors.platforms import postgres_checks as checks
from connectors.platforms import postgres_drill as drill
from connectors.platforms import postgres_steps as steps
from connectors.platforms.postgres_exec import limits

KINDS = ("switchover", "failback", "failover", "drill")


def build(kind: str, target: Target, observe: checks.Observe) -> list[PlanStep]:
    if kind not in KINDS:
        raise NotSupported(f"postgres: unknown kind {kind!r}")
    if kind in ("switchover", "failback"):
        why = actions.problem(target.connection, "rejoin")
        if why:
            raise NotSupported(f"postgres: {kind} needs the 'rejoin' host action ({why})")
    if kind == "switchover":
        return _switchover_prechecks(target, observe) + _handover(target, observe)
    if kind == "failback":
        return _failback(target, observe) + _handover(target, observe)
    if kind == "failover":
        return _failover(target)
    return _drill(target, observe)


def _check(name: str, run: checks.Check, description: str, target: Target) -> PlanStep:
    # observe() is bounded at about 2 x timeout + 1 s per call; a check calls it a few times.
    seconds = 4 * max(2.0, float(target.timeout_seconds)) + 20
    return PlanStep(name, Phase.PRECHECK, run, description, timeout_seconds=seconds)


def _post(name: str, run: checks.Check, description: str, target: Target) -> PlanStep:
    seconds = 4 * max(2.0, float(target.timeout_seconds)) + 30
    return PlanStep(name, Phase.POSTCHECK, run, description, timeout_seconds=seconds)


def _action_seconds(target: Target, name: str) -> float:
    try:
        return actions.spec(target.connection, name).timeout_seconds
    except actions.HostActionError:
        return actions.DEFAULT_TIMEOUT_SECONDS


def _switchover_prechecks(target: Target, observe: checks.Observe) -> list[PlanStep]:
    return [
        _check("both_reachable", checks.both_reachable(observe), "both nodes answer", target),
        _check(
            "roles_as_expected",
            checks.roles_as_expected(observe),
            "the node to promote is the standby of the other",
            target,
        ),
        _check(
            "standby_streaming",
            checks.standby_streaming(observe),
            "the standby is connected and streaming, replay not paused",
            target,
        ),
        _check(
            "lag_within_threshold",
            checks.lag_within_threshold(observe),
            "replication lag under the threshold, no apply delay",
            target,
        ),
        _check("timeline_match", checks.timeline_match(observe), "same timeline", target),
        _check(
            "host_actions_configured",
            checks.host_actions_configured(("rejoin",)),
            "the rejoin host action (and any other configured one) is usable",
            target,
        ),
    ]


def _handover(target: Target, observe: checks.Observe) -> list[PlanStep]:
    lim = limits(target)
    plan = [
        PlanStep(
            "fence_primary",
            Phase.STEP,
            steps.fence_primary,
            "old primary read-only by default (ALTER SYSTEM), other client sessions ended",
            changes_state=True,
            idempotent=True,
            verify=steps.verify_fence,
            timeout_seconds=60,
        ),
        PlanStep(
            "wait_for_catch_up",
            Phase.STEP,
            steps.wait_for_catch_up,
            "pg_switch_wal() on the old primary; the standby replays up to it",
            timeout_seconds=lim.catch_up_seconds + 20,
        ),
    ]
    if actions.configured(target.connection, "stop"):
        plan.append(
            PlanStep(
                "stop_old_primary",
                Phase.STEP,
                steps.stop_old_primary,
                "clean shutdown of the old primary (host action 'stop'): its last WAL is "
                "handed over",
                changes_state=True,
                idempotent=True,
                verify=steps.verify_stopped,
                timeout_seconds=_action_seconds(target, "stop") + 15,
            )
        )
    plan += [
        PlanStep(
            "promote",
            Phase.STEP,
            steps.promote,
            "pg_promote() on the standby",
            changes_state=True,
            idempotent=False,
            verify=steps.verify_promoted,
            timeout_seconds=lim.promote_seconds + 20,
        ),
        PlanStep(
            "verify_writable",
            Phase.STEP,
            checks.verify_writable,
            "a read-write transaction commits on the new primary",
            timeout_seconds=30,
        ),
        PlanStep(
            "rejoin_old_primary",
            Phase.STEP,
            steps.rejoin_old_primary,
            "old primary becomes a standby of the new one (CHECKPOINT, host action 'rejoin': "
            "pg_rewind, standby.signal, primary_conninfo, start)",
            changes_state=True,
            idempotent=True,
            verify=steps.verify_rejoined,
            timeout_seconds=_action_seconds(target, "rejoin") + lim.streaming_seconds + 60,
        ),
        PlanStep(
            "clear_fence",
            Phase.STEP,
            steps.clear_fence,
            "reset default_transaction_read_only on the rejoined standby",
            changes_state=True,
            idempotent=True,
            verify=steps.verify_unfenced,
            timeout_seconds=30,
        ),
        _post("roles_swapped", checks.roles_swapped(observe), "roles swapped, streaming", target),
        _post(
            "replication_caught_up",
            checks.replication_caught_up(observe),
            "the new standby has replayed everything",
            target,
        ),
    ]
    return plan


def _failback(target: Target, observe: checks.Observe) -> list[PlanStep]:
    lim = limits(target)
    return [
        _check(
            "failback_direction",
            checks.failback_direction,
            "the configured primary site is the one to promote",
            target,
        ),
        _check(
            "current_primary_reachable",
            checks.current_primary_reachable,
            "the node that is primary now answers",
            target,
        ),
        _check(
            "original_primary_not_writable",
            checks.original_primary_not_writable,
            "the node to bring back takes no writes (rejoining it discards its own)",
            target,
        ),
        _check(
            "host_actions_configured",
            checks.host_actions_configured(("rejoin",)),
            "the rejoin host action (and any other configured one) is usable",
            target,
        ),
        PlanStep(
            "prepare_original_primary",
            Phase.STEP,
            steps.prepare_promote_node,
            "the primary-site node becomes a streaming standby of the current primary "
            "(host action 'rejoin', pg_rewind when it diverged)",
            changes_state=True,
            idempotent=True,
            verify=steps.verify_prepared,
            timeout_seconds=_action_seconds(target, "rejoin") + lim.streaming_seconds + 60,
        ),
        PlanStep(
            "standby_ready",
            Phase.STEP,
            checks.standby_ready(observe),
            "streaming, lag under the threshold, same timeline",
            timeout_seconds=lim.catch_up_seconds + 4 * max(2.0, target.timeout_seconds) + 20,
        ),
    ]


def _failover(target: Target) -> list[PlanStep]:
    lim = limits(target)
    return [
        _check(
            "promote_node_ready",
            checks.promote_node_ready,
            "the node to promote answers and is a standby",
            target,
        ),
        _check(
            "old_primary_not_writable",
            checks.old_primary_not_writable,
            "the old primary takes no writes (invariant 10; the operator may override)",
            target,
        ),
        _check(
            "loss_window",
            checks.loss_window,
            "potential data-loss window from the last markers the standby has",
            target,
        ),
        PlanStep(
            "promote",
            Phase.STEP,
            steps.promote,
            "pg_promote() on the standby",
            changes_state=True,
            idempotent=False,
            verify=steps.verify_promoted,
            timeout_seconds=lim.promote_seconds + 20,
        ),
        _post(
            "new_primary_writable",
            checks.verify_writable,
            "a read-write transaction commits on the new primary",
            target,
        ),
    ]


def _drill(target: Target, observe: checks.Observe) -> list[PlanStep]:
    lim = limits(target)
    return [
        _check("both_reachable", checks.both_reachable(observe), "both nodes answer", target),
        _check(
            "standby_streaming",
            checks.standby_streaming(observe),
            "the standby is connected and streaming",
            target,
        ),
        PlanStep(
            "write_drill_marker",
            Phase.STEP,
            drill.write_drill_marker,
            "one row in bc_drill on the primary (data only; roles untouched)",
            changes_state=True,
            idempotent=True,
            verify=drill.verify_drill_marker,
            timeout_seconds=30,
        ),
        PlanStep(
            "marker_replayed",
            Phase.STEP,
            drill.marker_replayed,
            "the marker becomes visible on the standby within the RPO target",
            timeout_seconds=lim.rpo_target_seconds + 30,
        ),
        _post("roles_unchanged", drill.roles_unchanged(observe), "nothing moved", target),
    ]
