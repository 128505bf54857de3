"""MongoDB failover (unplanned): the guard, the loss window and the forced reconfiguration.

Kept apart from the planned path (``mongodb_plan``) because it is the dangerous one: a forced
``replSetReconfig`` on the DR member makes it the only electable voter, whatever the rest of the
set thinks. Invariant 10 is checked first (``old_primary_not_writable``): while the old primary
answers ``hello`` as writable, or the DR member still sees a healthy PRIMARY, the precheck fails
as overridable by the operator alone (no policy needed; the runner records the override).
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError

from connectors.contract import ExecutionContext, StepResult, Target, Verified
from connectors.platforms.mongodb_checks import (
    CODEC,
    client_for,
    endpoints,
    fail,
    marker,
    next_config,
    read_config,
    split_endpoint,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) and value > _EPOCH else None


def old_primary_not_writable(ctx: ExecutionContext) -> StepResult:
    """Invariant 10: never promote while the old primary may still take writes."""
    target, other = endpoints(ctx)
    refuse = {"overridable": True, "override_needs_policy": False}
    how = _probe_hello(ctx.target, other)
    if how == "writable":
        return StepResult(
            ok=False,
            detail=f"{other} still accepts writes (hello: isWritablePrimary true): promoting "
            f"{target} would make two primaries. Use a switchover, or override this check "
            "explicitly (recorded).",
            data={"old_primary": "writable"},
            **refuse,
        )
    try:
        with client_for(ctx.target, target, "monitor") as client:
            status = client.admin.command("replSetGetStatus", codec_options=CODEC)
    except PyMongoError as exc:
        return StepResult(
            ok=False, detail=f"cannot read {target}'s view of the set: {exc}"[:400], **refuse
        )
    seen = [
        m["name"] for m in status.get("members", [])
        if m.get("state") == 1 and m.get("health") == 1 and not m.get("self")
    ]  # fmt: skip
    if seen:
        return StepResult(
            ok=False,
            detail=f"{target} sees a healthy PRIMARY ({', '.join(seen)}): it still takes "
            "writes. Override only if you know it is isolated from its clients.",
            data={"old_primary": "primary in the target's view"},
            **refuse,
        )
    if how == "unknown":
        return StepResult(
            ok=False,
            detail=f"{other} answers but its hello could not be read: cannot tell whether "
            "it takes writes",
            **refuse,
        )
    return StepResult(
        ok=True,
        detail=f"{other} {how}; {target} sees no primary",
        data={"old_primary": how},
    )


def estimate_loss_window(ctx: ExecutionContext) -> StepResult:
    target, other = endpoints(ctx)
    try:
        with client_for(ctx.target, target, "monitor") as client:
            status = client.admin.command("replSetGetStatus", codec_options=CODEC)
    except PyMongoError as exc:
        return StepResult(ok=False, detail=f"cannot read {target}: {exc}"[:400])
    optimes = status.get("optimes") or {}
    applied_at = _dt(optimes.get("lastAppliedWallTime"))
    entry = next((m for m in status.get("members", []) if m.get("name") == other), {})
    interval = float(status.get("heartbeatIntervalMillis") or 2000) / 1000
    markers: dict[str, Any] = {"dr_applied": marker(optimes.get("appliedOpTime"))}
    if applied_at:
        markers["dr_applied_at"] = applied_at.isoformat()
    if entry.get("health") == 1:
        # Still heard from (the check above was overridden): it writes on; this is the gap
        # now and it grows until it is demoted.
        until = _dt(entry.get("lastAppliedWallTime")) or _dt(entry.get("optimeDate"))
        markers["old_primary_applied"] = marker(entry.get("optime"))
    else:
        heard = _dt(entry.get("lastHeartbeatRecv"))
        until = heard and datetime.fromtimestamp(heard.timestamp() + interval, tz=UTC)
        if heard:
            markers["old_primary_last_heard"] = heard.isoformat()
            ctx.state["old_primary_last_heard"] = heard.timestamp()
    if not (applied_at and until):
        return StepResult(
            ok=True,
            detail="marker unavailable: the last write of the old primary cannot be placed",
            data={"marker_unavailable": True, "last_markers": markers},
        )
    window = round(max(0.0, (until - applied_at).total_seconds()), 3)
    ctx.state["loss_window_seconds"] = window
    return StepResult(
        ok=True,
        detail=f"potential loss window up to {window:g} s ({target} applied up to "
        f"{applied_at.isoformat()})",
        data={"potential_loss_window_seconds": window, "last_markers": markers},
    )


def _probe_hello(target: Target, endpoint: str) -> str:
    """'writable', 'answers, not primary', 'does not answer (...)' or 'unknown'."""
    host, port = split_endpoint(endpoint)
    try:
        socket.create_connection((host, port), timeout=target.timeout_seconds).close()
    except OSError as exc:
        return f"does not answer ({exc.strerror or type(exc).__name__})"
    try:
        with client_for(target, endpoint, None) as client:
            hello = client.admin.command("hello")
    except PyMongoError as exc:
        return f"does not answer ({type(exc).__name__})" if "timed out" in str(exc) else "unknown"
    return "writable" if hello.get("isWritablePrimary") else "answers, not primary"


# -- failover ----------------------------------------------------------------------------------


def _only_voter(config: dict[str, Any], host: str) -> bool:
    return all(
        (m["host"] == host) == (bool(m.get("votes", 1)) and float(m.get("priority", 1)) > 0)
        for m in config["members"]
    )


def force_reconfig(ctx: ExecutionContext) -> StepResult:
    target, _ = endpoints(ctx)
    try:
        with client_for(ctx.target, target, "execute") as client:
            config = client.admin.command("replSetGetConfig", codec_options=CODEC)["config"]
            if _only_voter(config, target):
                return StepResult(
                    ok=True,
                    detail=f"{target} is already the only electable voter (config version "
                    f"{config['version']}); no reconfig sent",
                )
            new = next_config(config)
            silenced = []
            for member in new["members"]:
                if member["host"] == target:
                    member["priority"] = max(float(member.get("priority", 1)), 1.0)
                    member["votes"] = 1
                else:
                    member["priority"], member["votes"] = 0, 0
                    silenced.append(member["host"])
            # First lift any stepdown period (a switchover back from here not long ago) that
            # would keep it from being elected; before the reconfig, while it is surely no
            # primary (replSetFreeze is refused on a primary).
            client.admin.command({"replSetFreeze": 0}, codec_options=CODEC)
            client.admin.command({"replSetReconfig": new, "force": True}, codec_options=CODEC)
            after = client.admin.command("replSetGetConfig", codec_options=CODEC)["config"]
    except PyMongoError as exc:
        return fail(exc, ctx, "replSetReconfig force")
    return StepResult(
        ok=True,
        detail=f"forced configuration version {after['version']}: {target} is the only "
        f"electable voter; priority 0 and no vote for {', '.join(silenced)}",
        data={
            "config_version_before": config["version"],
            "config_version_after": after["version"],
            "non_voting": silenced,
        },
    )


def verify_only_voter(ctx: ExecutionContext) -> Verified:
    target, _ = endpoints(ctx)
    config = read_config(ctx, [target])
    if config is None:
        return Verified.UNKNOWN
    return Verified.DONE if _only_voter(config, target) else Verified.NOT_DONE
