"""MongoDB execution plans: switchover/failback, failover, drill (docs/connectors/mongodb.md).

The member to promote is the one at ``ctx.promote_site``; the "other" member is the one at the
other configured site (the current primary for a switchover, failback or drill; the lost primary
for a failover). Every member is reached on its own with ``directConnection=True``.

- switchover / failback: raise the target's priority to the primary's (``replSetReconfig``),
  ``replSetStepDown`` with a catch-up period on the primary, wait until the target is PRIMARY,
  give the old primary the target's former priority (so the set keeps its posture: a passive DR
  member stays passive, now at the other site), then check roles, replication and lag.
- failover: refuse while the old primary still accepts writes (overridable by the operator,
  invariant 10), estimate the potential loss window, force a configuration in which the target
  is the only electable voter (``replSetReconfig`` with ``force: true``: dangerous), wait for it
  to be PRIMARY.
- drill: write a marker document on the primary, read it back on the target member with
  ``readPreference=secondary``, measure the delay against the RPO target; roles never change.

Credentials: ``monitor`` for reading, ``execute`` (clusterManager, readWrite on ``bcservice``)
only inside the steps that change something and their verifications.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError

from connectors.contract import (
    ExecutionContext,
    NotSupported,
    Phase,
    PlanStep,
    StepResult,
    Target,
    Verified,
)
from connectors.platforms import mongodb_checks as checks
from connectors.platforms import mongodb_failover as failover
from connectors.platforms.mongodb_checks import (
    CODEC,
    client_for,
    config_member,
    endpoints,
    fail,
    next_config,
    sleep_until,
)
from inventory.connection_settings import with_defaults

if TYPE_CHECKING:
    from connectors.platforms.mongodb import MongoConnector

DRILL_DB, DRILL_COLLECTION = "bcservice", "bc_drill"
STEPDOWN_SECONDS = 60  # the old primary may not be re-elected for this long
CATCH_UP_SECONDS = 10  # secondaryCatchUpPeriodSecs: how long the primary waits, writes held
ELECTION_WAIT_SECONDS = 30.0  # stepdown/forced reconfig -> the target must be PRIMARY by then
DRILL_GRACE_SECONDS = 5.0  # the probe looks for the marker until RPO target + this


def build(connector: MongoConnector, kind: str, target: Target) -> list[PlanStep]:
    """The steps for ``kind``; NotSupported when the connection settings cannot carry it."""
    conn = with_defaults("mongodb", dict(target.connection))
    if not conn.get("primary_member") or not conn.get("dr_member"):
        raise NotSupported("mongodb: primary_member and dr_member must both be set")
    look = checks.Checks(connector)
    io = float(target.timeout_seconds)
    read = 2 * io + 5  # an observation of both sides, in parallel, bounded by the timeout
    settle = checks.SETTLE_SECONDS + read
    prechecks = [
        _step("members_reachable", Phase.PRECHECK, look.members_reachable, read,
              "Both members answer hello and replSetGetStatus (monitor account)."),
        _step("target_is_healthy_secondary", Phase.PRECHECK, look.target_is_healthy_secondary,
              read, "The member to promote is a healthy SECONDARY with a sync source."),
        _step("lag_under_threshold", Phase.PRECHECK, look.lag_under_threshold, read,
              "Replication lag is under the resource's red threshold (10 s if none)."),
        _step("set_has_primary", Phase.PRECHECK, look.set_has_primary, read,
              "The other member is the set's primary; its optime is the marker before."),
    ]  # fmt: skip
    if kind in ("switchover", "failback"):
        return [
            *prechecks,
            _step("raise_target_priority", Phase.STEP, _raise_target_priority, 30 + io,
                  "replSetReconfig on the primary: the member to promote gets the primary's "
                  "priority (and a vote); replSetFreeze 0 on it lifts any earlier stepdown "
                  "period, so that it can be elected.",
                  changes=True, verify=_verify_target_priority),
            # Idempotent only through verify: re-run only when the target says NOT_DONE (the
            # old primary is still primary), and the step checks that again before sending.
            _step("step_down_primary", Phase.STEP, _step_down_primary,
                  CATCH_UP_SECONDS + 3 * io + 10,
                  f"replSetStepDown {STEPDOWN_SECONDS} s on the primary, waiting up to "
                  f"{CATCH_UP_SECONDS} s (writes held) for the target to catch up.",
                  changes=True, verify=_verify_step_down),
            _step("wait_for_target_primary", Phase.STEP, _wait_for_target_primary,
                  ELECTION_WAIT_SECONDS + 2 * io + 5,
                  "hello on the target until it is the writable primary; compares the optime it "
                  "was elected with to the old primary's last optime."),
            _step("lower_old_primary_priority", Phase.STEP, _lower_old_primary_priority,
                  30 + io,
                  "replSetReconfig on the new primary: the old primary gets the target's former "
                  "priority, so the set keeps its posture with the roles swapped.",
                  changes=True, verify=_verify_old_primary_priority),
            _step("roles_swapped", Phase.POSTCHECK, look.roles_swapped, settle,
                  "The target is PRIMARY and the old primary SECONDARY."),
            _step("old_primary_replicating", Phase.POSTCHECK, look.old_primary_replicating,
                  settle, "The old primary replicates from the new one."),
            _step("lag_near_zero", Phase.POSTCHECK, look.lag_near_zero, settle,
                  f"Lag at most {checks.NEAR_ZERO_LAG_SECONDS:g} s (optimeDate resolution)."),
        ]  # fmt: skip
    if kind == "failover":
        return [
            _step("target_reachable", Phase.PRECHECK, look.target_reachable, read,
                  "The member to promote answers and is a healthy SECONDARY."),
            _step("old_primary_not_writable", Phase.PRECHECK, failover.old_primary_not_writable,
                  read, "The old primary does not accept writes (hello from here, and no healthy "
                  "PRIMARY in the target's view). Overriding it is the operator's explicit call."),
            _step("estimate_loss_window", Phase.PRECHECK, failover.estimate_loss_window, read,
                  "Potential loss window: from the target's last applied write to the last time "
                  "it heard from the old primary, plus one heartbeat interval."),
            _step("force_reconfig_target_only_voter", Phase.STEP, failover.force_reconfig, 30 + io,
                  "DANGEROUS: replSetReconfig with force: true on the target, making it the only "
                  "electable voter. Writes the old primary took after the target's last applied "
                  "optime are rolled back when it returns.",
                  changes=True, verify=failover.verify_only_voter),
            _step("wait_for_target_primary", Phase.STEP, _wait_for_target_primary,
                  ELECTION_WAIT_SECONDS + 2 * io + 5,
                  "hello on the target until it is the writable primary."),
            _step("target_is_primary", Phase.POSTCHECK, look.target_is_primary, settle,
                  "The target is PRIMARY."),
            _step("old_primary_not_primary", Phase.POSTCHECK, look.old_primary_not_primary,
                  settle, "The old primary is down or no longer PRIMARY."),
        ]  # fmt: skip
    if kind == "drill":
        return [
            *prechecks,
            _step("consistency_probe", Phase.STEP, _consistency_probe,
                  checks.rpo_target(target) + DRILL_GRACE_SECONDS + 3 * io + 5,
                  f"insert a marker into {DRILL_DB}.{DRILL_COLLECTION} on the primary and read "
                  "it on the target with readPreference=secondary; the delay is the measured "
                  "RPO. Roles are not changed.",
                  changes=True, verify=_verify_probe),
            _step("rpo_within_target", Phase.POSTCHECK, look.rpo_within_target, 5,
                  "The measured delay is within the resource's RPO target."),
            _step("roles_unchanged", Phase.POSTCHECK, look.roles_unchanged, read,
                  "Both members have the roles they had before the drill."),
        ]  # fmt: skip
    raise NotSupported(f"mongodb: unknown kind {kind!r}")


def _step(
    name: str,
    phase: Phase,
    run: Callable[[ExecutionContext], StepResult],
    timeout: float,
    description: str,
    *,
    changes: bool = False,
    verify: Callable[[ExecutionContext], Verified] | None = None,
) -> PlanStep:
    # Every state-changing step here checks the target before acting and leaves it as it found
    # it when the change is already there, so re-running it after verify said NOT_DONE is safe.
    return PlanStep(
        name=name,
        phase=phase,
        run=run,
        description=description,
        changes_state=changes,
        idempotent=True,
        verify=verify,
        timeout_seconds=float(timeout),
    )


# -- switchover / failback ---------------------------------------------------------------------


def _raise_target_priority(ctx: ExecutionContext) -> StepResult:
    target, other = endpoints(ctx)
    try:
        with client_for(ctx.target, other, "execute") as client:
            hello = client.admin.command("hello", codec_options=CODEC)
            if not hello.get("isWritablePrimary"):
                return StepResult(
                    ok=False,
                    detail=f"{other} is not the primary (primary: {hello.get('primary')}); "
                    "nothing was changed",
                )
            config = client.admin.command("replSetGetConfig", codec_options=CODEC)["config"]
            mine, theirs = config_member(config, target), config_member(config, other)
            ctx.state.setdefault(
                "priorities_before",
                {target: float(mine.get("priority", 1)), other: float(theirs.get("priority", 1))},
            )
            # Equal, not higher: a higher priority would start a priority takeover on its own
            # time, without the stepdown's catch-up guarantee. A primary's priority is > 0.
            wanted = float(theirs.get("priority", 1))
            if float(mine.get("priority", 1)) >= wanted and mine.get("votes", 1):
                checks.unfreeze(ctx, target)
                return StepResult(
                    ok=True,
                    detail=f"{target} is already electable (priority {mine.get('priority')}); "
                    "no reconfig needed; unfrozen",
                    data={"config_version": config["version"]},
                )
            new = next_config(config)
            entry = config_member(new, target)
            entry["priority"], entry["votes"] = wanted, 1
            checks.reconfig(client, new)
        checks.unfreeze(ctx, target)
    except PyMongoError as exc:
        return fail(exc, ctx, "replSetReconfig")
    return StepResult(
        ok=True,
        detail=f"{target}: priority {mine.get('priority')} -> {wanted:g} (config version "
        f"{config['version']} -> {new['version']}); unfrozen",
        data={"config_version_before": config["version"], "config_version_after": new["version"]},
    )


def _verify_target_priority(ctx: ExecutionContext) -> Verified:
    target, other = endpoints(ctx)
    config = checks.read_config(ctx, [target, other])
    if config is None:
        return Verified.UNKNOWN
    mine, theirs = config_member(config, target), config_member(config, other)
    electable = float(mine.get("priority", 1)) >= float(theirs.get("priority", 1))
    return Verified.DONE if electable and mine.get("votes", 1) else Verified.NOT_DONE


def _step_down_primary(ctx: ExecutionContext) -> StepResult:
    target, other = endpoints(ctx)
    if checks.is_writable_primary(ctx.target, target):
        return StepResult(ok=True, detail=f"{target} is already the primary; nothing sent")
    command = {"replSetStepDown": STEPDOWN_SECONDS, "secondaryCatchUpPeriodSecs": CATCH_UP_SECONDS}
    try:
        with client_for(ctx.target, other, "execute", extra=CATCH_UP_SECONDS + 5) as client:
            hello = client.admin.command("hello", codec_options=CODEC)
            if not hello.get("isWritablePrimary"):
                return StepResult(
                    ok=False,
                    detail=f"{other} is not the primary (primary: {hello.get('primary')}); "
                    "nothing was sent",
                )
            ctx.state["stepdown_sent_at"] = time.time()
            try:
                client.admin.command(command, codec_options=CODEC)
            except OperationFailure as exc:
                if exc.code == 262:
                    return StepResult(
                        ok=False,
                        detail=f"no electable secondary caught up within {CATCH_UP_SECONDS} s: "
                        f"{other} stays primary and takes writes again; nothing changed "
                        f"({exc.details.get('errmsg') if exc.details else exc})",
                    )
                raise
            except AutoReconnect:
                # Servers before 4.2 close every connection when they step down.
                pass
    except PyMongoError as exc:
        return fail(exc, ctx, "replSetStepDown")
    took = time.time() - ctx.state["stepdown_sent_at"]
    return StepResult(
        ok=True,
        detail=f"{other} stepped down after {took:.3f} s (catch-up included)",
        data={"stepdown_seconds": round(took, 3)},
    )


def _verify_step_down(ctx: ExecutionContext) -> Verified:
    """Who is primary now: the target -> DONE; still the old primary -> NOT_DONE."""
    target, other = endpoints(ctx)
    deadline = time.time() + min(10.0, ELECTION_WAIT_SECONDS)
    while time.time() < deadline:  # an election may be under way: give it a moment
        if checks.is_writable_primary(ctx.target, target):
            return Verified.DONE
        if checks.is_writable_primary(ctx.target, other):
            return Verified.NOT_DONE
        time.sleep(0.2)
    return Verified.UNKNOWN


def _wait_for_target_primary(ctx: ExecutionContext) -> StepResult:
    target, other = endpoints(ctx)
    try:
        with client_for(ctx.target, target, "monitor") as client:
            hello = sleep_until(
                lambda: client.admin.command("hello", codec_options=CODEC),
                lambda h: bool(h.get("isWritablePrimary")),
                ELECTION_WAIT_SECONDS,
            )
            writable_at = time.time()
            if hello is None:
                return StepResult(
                    ok=False,
                    detail=f"{target} is not the writable primary after "
                    f"{ELECTION_WAIT_SECONDS:g} s",
                )
            status = client.admin.command("replSetGetStatus", codec_options=CODEC)
    except PyMongoError as exc:
        return fail(exc, ctx, "hello")
    elected = status.get("electionCandidateMetrics") or {}
    data: dict[str, Any] = {
        "marker_after": checks.marker((hello.get("lastWrite") or {}).get("opTime")),
        "term": status.get("term"),
        "election_reason": elected.get("lastElectionReason"),
    }
    if ctx.kind == "failover":
        last_heard = ctx.state.get("old_primary_last_heard")
        if last_heard:
            data["rto_measured_seconds"] = round(writable_at - float(last_heard), 3)
        return StepResult(ok=True, detail=f"{target} is the writable primary", data=data)
    sent = ctx.state.get("stepdown_sent_at")
    if sent:
        data["write_unavailable_seconds"] = round(writable_at - float(sent), 3)
    data.update(checks.compare_election(ctx, elected, other))
    detail = f"{target} is the writable primary (term {status.get('term')})"
    if "write_unavailable_seconds" in data:
        detail += f"; writes unavailable for {data['write_unavailable_seconds']:.3f} s"
    return StepResult(ok=True, detail=detail, data=data)


def _lower_old_primary_priority(ctx: ExecutionContext) -> StepResult:
    target, other = endpoints(ctx)
    before = ctx.state.get("priorities_before") or {}
    if target not in before:
        return StepResult(
            ok=True,
            detail="the priorities before the switchover were not recorded (step verified "
            "after a restart); priorities left as they are",
        )
    wanted = float(before[target])
    try:
        with client_for(ctx.target, target, "execute") as client:
            config = client.admin.command("replSetGetConfig", codec_options=CODEC)["config"]
            current = float(config_member(config, other).get("priority", 1))
            if current <= wanted:
                return StepResult(
                    ok=True, detail=f"{other} already has priority {current:g}; nothing to change"
                )
            new = next_config(config)
            config_member(new, other)["priority"] = wanted
            checks.reconfig(client, new)
    except PyMongoError as exc:
        return fail(exc, ctx, "replSetReconfig")
    return StepResult(
        ok=True,
        detail=f"{other}: priority {current:g} -> {wanted:g} (config version {config['version']} "
        f"-> {new['version']})",
        data={"config_version_after": new["version"]},
    )


def _verify_old_primary_priority(ctx: ExecutionContext) -> Verified:
    target, other = endpoints(ctx)
    before = ctx.state.get("priorities_before") or {}
    config = checks.read_config(ctx, [target, other])
    if config is None or target not in before:
        return Verified.UNKNOWN
    current = float(config_member(config, other).get("priority", 1))
    return Verified.DONE if current <= float(before[target]) else Verified.NOT_DONE


# -- drill -------------------------------------------------------------------------------------


def _consistency_probe(ctx: ExecutionContext) -> StepResult:
    target, other = endpoints(ctx)
    budget = checks.rpo_target(ctx.target) + DRILL_GRACE_SECONDS
    marker_id = f"drill-{uuid.uuid4().hex}"
    try:
        with (
            client_for(ctx.target, other, "execute") as primary,
            client_for(ctx.target, target, "execute", read_preference="secondary") as replica,
        ):
            drill = replica[DRILL_DB][DRILL_COLLECTION]
            # Connect and authenticate both before the write, so that the measurement is the
            # replication delay and not the time to open a connection.
            primary.admin.command("ping")
            drill.find_one({"_id": marker_id})
            written = time.time()
            primary[DRILL_DB][DRILL_COLLECTION].insert_one(
                {
                    "_id": marker_id,
                    "written_at": datetime.fromtimestamp(written, tz=UTC),
                    "resource": ctx.target.name,
                    "purpose": "bcservice DR drill consistency probe",
                }
            )
            ctx.state["drill_marker"] = {"id": marker_id, "written_at": written, "on": other}
            found = sleep_until(
                lambda: drill.find_one({"_id": marker_id}),
                lambda doc: doc is not None,
                budget - (time.time() - written),
                interval=0.01,
            )
            seen = time.time()
    except PyMongoError as exc:
        return fail(exc, ctx, "drill probe")
    data: dict[str, Any] = {"drill_marker": marker_id, "written_on": other, "read_on": target}
    if found is None:
        data["marker_unavailable"] = True
        return StepResult(
            ok=False,
            detail=f"marker {marker_id} written on {other} was not seen on {target} within "
            f"{budget:g} s (RPO target + {DRILL_GRACE_SECONDS:g} s)",
            data=data,
        )
    rpo = round(seen - written, 3)
    ctx.state["rpo_measured_seconds"] = rpo
    data["rpo_measured_seconds"] = rpo
    return StepResult(
        ok=True, detail=f"marker {marker_id} replicated to {target} in {rpo:.3f} s", data=data
    )


def _verify_probe(ctx: ExecutionContext) -> Verified:
    """The marker is on the primary -> DONE (a fresh probe may still be run as a new drill)."""
    written = ctx.state.get("drill_marker") or {}
    if not written:
        return Verified.NOT_DONE
    try:
        with client_for(ctx.target, written["on"], "execute") as client:
            found = client[DRILL_DB][DRILL_COLLECTION].find_one({"_id": written["id"]})
    except PyMongoError:
        return Verified.UNKNOWN
    return Verified.DONE if found else Verified.NOT_DONE
