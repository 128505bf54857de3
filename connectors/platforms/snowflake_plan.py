"""Snowflake execution plans: switchover/failback, failover, drill (docs/connectors/snowflake.md).

Snowflake's documented procedure runs in the target account (the one whose group becomes
primary), with the execute role:

- switchover / failback: a final ``ALTER FAILOVER GROUP <g> REFRESH`` while the primary is
  reachable (its primary snapshot timestamp is ``caught_up_to``), then ``ALTER FAILOVER GROUP <g>
  PRIMARY``. Snowflake does not fence the primary: anything written there after the snapshot is
  not carried over unless writes were stopped first, so the time from the snapshot to the
  promotion is also reported as the potential loss window (the service cannot prove that writes
  had stopped).
- failover: refuse while the group in the old primary account is still primary and reachable
  (overridable by the operator alone, invariant 10); promote without a refresh; potential loss
  window = promotion time - snapshot of the last completed refresh.
- drill: read-only. The age of the last completed refresh's snapshot is the measured RPO; roles
  never change.

Reads go through ``SnowflakeConnector.observe`` (monitor account); the execute account is used
only by the two state-changing steps. Its secret may carry ``role`` (e.g. a role holding
FAILOVER and REPLICATE on the group); otherwise the user's default role applies.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.contract import (
    ExecutionContext,
    NotSupported,
    Outcome,
    Phase,
    PlanStep,
    StepResult,
    Target,
    Verified,
)
from connectors.platforms.snowflake import (
    _IDENTIFIER,
    HISTORY_SQL,
    _rows,
    _same_account,
    _text,
    _timeout_kwargs,
    _truthy,
    classify,
)
from connectors.platforms.snowflake_checks import SETTLE_SECONDS, Checks
from inventory.connection_settings import with_defaults

if TYPE_CHECKING:
    from connectors.platforms.snowflake import SnowflakeConnector

REFRESH_TIMEOUT_SECONDS = 900.0  # a final refresh copies what changed since the last one
PROMOTE_TIMEOUT_SECONDS = 120.0


def build(connector: SnowflakeConnector, kind: str, target: Target) -> list[PlanStep]:
    """The steps for ``kind``; NotSupported when the connection settings cannot carry it."""
    conn = with_defaults("snowflake", dict(target.connection))
    if not (conn.get("primary_account") and conn.get("dr_account")):
        raise NotSupported("snowflake: primary_account and dr_account must both be set")
    if not _IDENTIFIER.match(str(conn.get("failover_group") or "")):
        raise NotSupported("snowflake: failover_group must be a plain identifier")
    plan = _Plan(connector)
    read = 2 * float(target.timeout_seconds) + 5
    settle = SETTLE_SECONDS + read

    def step(name: str, phase: Phase, run: Callable[[ExecutionContext], StepResult],
             timeout: float, description: str, **kw: Any) -> PlanStep:  # fmt: skip
        return PlanStep(name, phase, run, description, timeout_seconds=timeout, **kw)

    prechecks = [
        step("accounts_reachable", Phase.PRECHECK, plan.accounts_reachable, read,
             "Both accounts answer SHOW FAILOVER GROUPS (monitor role)."),
        step("target_is_secondary", Phase.PRECHECK, plan.target_is_secondary, read,
             "The target account holds the secondary group, the other account the primary."),
        step("replication_not_broken", Phase.PRECHECK, plan.replication_not_broken, read,
             "The latest refresh did not fail and exactly one account holds the primary."),
    ]  # fmt: skip
    promote = step(
        "promote_target", Phase.STEP, plan.promote, PROMOTE_TIMEOUT_SECONDS + read,
        "ALTER FAILOVER GROUP <g> PRIMARY in the target account (execute role). Not repeated "
        "after a crash unless SHOW FAILOVER GROUPS shows it did not happen.",
        changes_state=True, idempotent=False, verify=plan.verify_promoted,
    )  # fmt: skip
    postchecks = [
        step("target_is_primary", Phase.POSTCHECK, plan.target_is_primary, settle,
             "SHOW FAILOVER GROUPS in the target account: is_primary true."),
        step("old_primary_is_secondary", Phase.POSTCHECK, plan.old_primary_is_secondary, settle,
             "The other account's group is now secondary (skipped while it is unreachable "
             "after a failover)."),
    ]  # fmt: skip
    if kind in ("switchover", "failback"):
        refresh = step(
            "final_refresh", Phase.STEP, plan.final_refresh, REFRESH_TIMEOUT_SECONDS + read,
            "ALTER FAILOVER GROUP <g> REFRESH in the target account while the primary is "
            "reachable: the refreshed snapshot timestamp is what the target is caught up to.",
            changes_state=True, idempotent=True, verify=plan.verify_refreshed,
        )  # fmt: skip
        return [*prechecks, refresh, promote, *postchecks]
    if kind == "failover":
        return [
            step("target_reachable", Phase.PRECHECK, plan.target_reachable, read,
                 "The target account answers and holds the secondary group."),
            step("old_primary_not_writable", Phase.PRECHECK, plan.old_primary_not_writable, read,
                 "The group in the old primary account is not primary and reachable. Overriding "
                 "it is the operator's explicit call."),
            step("estimate_loss_window", Phase.PRECHECK, plan.estimate_loss_window, read,
                 "Potential loss window: now - snapshot of the last completed refresh."),
            promote,
            *postchecks,
        ]  # fmt: skip
    if kind == "drill":
        return [
            *prechecks,
            step("measure_refresh_freshness", Phase.STEP, plan.measure_freshness, read,
                 "Age of the last completed refresh's snapshot in the target account: the "
                 "measured RPO. Read-only."),
            step("rpo_within_target", Phase.POSTCHECK, plan.rpo_within_target, 5,
                 "The measured age is within the resource's RPO target."),
            step("roles_unchanged", Phase.POSTCHECK, plan.roles_unchanged, read,
                 "Both accounts hold the roles they had before the drill."),
        ]  # fmt: skip
    raise NotSupported(f"snowflake: unknown kind {kind!r}")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


class _Plan(Checks):
    """The state-changing steps (and their verifications) on top of the read-only checks."""

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _cursor(self, ctx: ExecutionContext, purpose: str, seconds: float) -> Iterator[Any]:
        """A cursor in the target account; statements may run ``seconds`` (a refresh is long)."""
        conn = with_defaults("snowflake", dict(ctx.target.connection))
        creds = dict(ctx.target.credentials(purpose) or {})
        factory = self.connector.connection_factory()
        kwargs: dict[str, Any] = {
            "account": self._account(ctx, ctx.promote_site),
            "user": creds.get("username") or creds.get("user", ""),
            "password": creds.get("password", ""),
            "application": "bcservice",
            **_timeout_kwargs(ctx.target.timeout_seconds, factory),
        }
        for key in ("query_timeout", "network_timeout"):
            if key in kwargs:
                kwargs[key] = max(int(kwargs[key]), math.ceil(seconds))
        # The monitoring role lacks FAILOVER/REPLICATE: execution uses the secret's role, if any.
        role = creds.get("role") if purpose == "execute" else conn.get("role")
        kwargs.update({k: conn[k] for k in ("warehouse", "database") if conn.get(k)})
        if role:
            kwargs["role"] = role
        connection = factory(**kwargs)
        try:
            yield connection.cursor()
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def _group_row(self, ctx: ExecutionContext, cursor: Any) -> dict[str, Any] | None:
        cursor.execute("SHOW FAILOVER GROUPS")
        group, account = self._group(ctx).upper(), self._account(ctx, ctx.promote_site)
        rows = [r for r in _rows(cursor) if str(r.get("name", "")).upper() == group]
        return next((r for r in rows if _same_account(account, r)), None)

    def _last_snapshot(self, ctx: ExecutionContext, cursor: Any) -> tuple[float | None, str]:
        """(snapshot of the newest COMPLETED refresh in the target account, its job uuid)."""
        conn = with_defaults("snowflake", dict(ctx.target.connection))
        schema = f"{conn['database']}." if conn.get("database") else ""
        cursor.execute(HISTORY_SQL.format(schema=schema, group=self._group(ctx).upper()))
        done = [
            r
            for r in _rows(cursor)
            if str(r.get("phase_name")).upper() == "COMPLETED"
            and r.get("primary_snapshot_timestamp")
        ]
        if not done:
            return None, ""
        newest = max(done, key=lambda r: r["primary_snapshot_timestamp"])
        stamp = newest["primary_snapshot_timestamp"]
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp(), str(newest.get("job_uuid") or "")

    @staticmethod
    def _failed(exc: BaseException, ctx: ExecutionContext, what: str) -> StepResult:
        outcome = classify(exc)
        detail = f"{what} failed ({outcome}): {_text(exc, {})}"
        if outcome == Outcome.PERMISSION_DENIED:
            detail += " — the execute role needs FAILOVER (promote) and REPLICATE (refresh)"
        return StepResult(ok=False, detail=detail[:600])

    # -- state-changing steps ------------------------------------------------------------------

    def final_refresh(self, ctx: ExecutionContext) -> StepResult:
        group = self._group(ctx)
        started = time.time()
        ctx.state["refresh_started_at"] = started
        try:
            with self._cursor(ctx, "execute", REFRESH_TIMEOUT_SECONDS) as cursor:
                cursor.execute(f"ALTER FAILOVER GROUP {group} REFRESH")
                snapshot, job = self._last_snapshot(ctx, cursor)
        except Exception as exc:
            return self._failed(exc, ctx, "ALTER FAILOVER GROUP ... REFRESH")
        took = round(time.time() - started, 3)
        if snapshot is None:
            return StepResult(
                ok=False,
                detail="the refresh returned but no completed refresh is in the history",
                data={"marker_unavailable": True},
            )
        ctx.state["caught_up_snapshot"] = snapshot
        return StepResult(
            ok=True,
            detail=f"refreshed in {took:g} s: the target is caught up to the primary as of "
            f"{_iso(snapshot)} (job {job})",
            data={"caught_up_to": _iso(snapshot), "refresh_job": job, "refresh_seconds": took},
        )

    def verify_refreshed(self, ctx: ExecutionContext) -> Verified:
        started = ctx.state.get("refresh_started_at")
        if not started:
            return Verified.NOT_DONE
        try:
            with self._cursor(ctx, "monitor", 60) as cursor:
                snapshot, _ = self._last_snapshot(ctx, cursor)
        except Exception:
            return Verified.UNKNOWN
        # The refresh's snapshot is taken when it starts: at or after the step began.
        return Verified.DONE if snapshot and snapshot >= started - 1 else Verified.NOT_DONE

    def promote(self, ctx: ExecutionContext) -> StepResult:
        group = self._group(ctx)
        try:
            with self._cursor(ctx, "execute", PROMOTE_TIMEOUT_SECONDS) as cursor:
                row = self._group_row(ctx, cursor)
                if row is None:
                    return StepResult(ok=False, detail=f"group {group} is not visible here")
                snapshot = ctx.state.get("caught_up_snapshot")
                if snapshot is None:  # failover: no final refresh; the last completed one
                    snapshot, _ = self._last_snapshot(ctx, cursor)
                if _truthy(row.get("is_primary")):
                    return StepResult(ok=True, detail="the target already holds the primary")
                cursor.execute(f"ALTER FAILOVER GROUP {group} PRIMARY")
                promoted = time.time()
                row = self._group_row(ctx, cursor)
        except Exception as exc:
            return self._failed(exc, ctx, "ALTER FAILOVER GROUP ... PRIMARY")
        if row is None or not _truthy(row.get("is_primary")):
            return StepResult(ok=False, detail="PRIMARY returned but the group is not primary")
        data: dict[str, Any] = {"promoted_at": _iso(promoted)}
        if snapshot is None:
            data["marker_unavailable"] = True
        else:
            # Writes to the old primary after the snapshot are not in the new primary unless
            # they had been stopped; the service cannot see that, so it says "potential".
            data["potential_loss_window_seconds"] = round(max(0.0, promoted - snapshot), 3)
            data["last_markers"] = {"snapshot": _iso(snapshot), "promoted_at": _iso(promoted)}
        return StepResult(ok=True, detail=f"{row.get('account_name')} holds the primary", data=data)

    def verify_promoted(self, ctx: ExecutionContext) -> Verified:
        try:
            with self._cursor(ctx, "monitor", 60) as cursor:
                row = self._group_row(ctx, cursor)
        except Exception:
            return Verified.UNKNOWN
        if row is None:
            return Verified.UNKNOWN
        return Verified.DONE if _truthy(row.get("is_primary")) else Verified.NOT_DONE
