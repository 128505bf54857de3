"""Snowflake failover groups: read-only observation through a DB-API connection.

Both accounts (primary and DR) are connected to in parallel with the ``monitor`` credentials.
Each runs ``SHOW FAILOVER GROUPS`` (the documented syntax has no LIKE clause, so the rows are
filtered here by name); the account that holds the secondary group also reads
``INFORMATION_SCHEMA.REPLICATION_GROUP_REFRESH_HISTORY('<group>')``. The data in a secondary is
as of the primary snapshot timestamp of its last completed refresh, so lag = now - that
timestamp, and that timestamp is the replication marker. Needs a role with MONITOR (or any
privilege) on the failover group. Field meanings: docs/connectors/snowflake.md.

The connection factory is ``snowflake.connector.connect`` unless the instance was given one or
the Django setting ``BC_SNOWFLAKE_CONNECTION_FACTORY`` ("module:function") names one (the lab
uses ``connectors.lab.snowflake_sim:connect``). The setting is read at observe time, so this
module imports without Django settings.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from connectors.contract import (
    Capability,
    Connector,
    Observation,
    Outcome,
    PlanStep,
    Replication,
    Role,
    SideObservation,
    Support,
    Target,
)
from inventory.connection_settings import with_defaults

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
_FINISHED = {"COMPLETED", "FAILED", "CANCELED", "CANCELLED"}
# Capabilities cannot check the execute role's privileges without fetching its secret (only a
# running step may, invariant 6): they stay conditional and say what they need. A missing
# privilege fails the first state-changing step (errno 3001) before anything changed.
_PROMOTE = (
    "ALTER FAILOVER GROUP ... PRIMARY needs the FAILOVER privilege (and REFRESH the REPLICATE "
    "privilege) on the execution role (Business Critical edition or higher)"
)
HISTORY_SQL = (
    "SELECT phase_name, start_time, end_time, job_uuid, total_bytes, object_count, "
    "primary_snapshot_timestamp "
    "FROM TABLE({schema}INFORMATION_SCHEMA.REPLICATION_GROUP_REFRESH_HISTORY('{group}')) "
    "ORDER BY start_time DESC LIMIT 20"
)


@dataclass
class _Side:
    obs: SideObservation
    row: dict[str, Any] | None = None  # this account's own SHOW FAILOVER GROUPS row
    rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] | None = None


def classify(exc: BaseException) -> Outcome:
    """A driver exception -> Outcome. Class first: connector 3.x used errno 250001 both for a
    refused login (DatabaseError) and for an unreachable host (OperationalError)."""
    try:
        from snowflake.connector import errors
    except ImportError:  # a custom factory without the driver installed
        errors = None
    errno = getattr(exc, "errno", None)
    text = str(exc).lower()
    if errors is not None and isinstance(exc, errors.OperationalError):
        timed_out = errno == 14 or getattr(exc, "sqlstate", None) == "HYT00"
        return (
            Outcome.TIMEOUT
            if timed_out or "timed out" in text or "timeout" in text
            else (Outcome.CONNECTION_ERROR)
        )
    if errors is not None and isinstance(exc, errors.ProgrammingError):
        denied = errno in (3001, 2003) or "insufficient privileges" in text
        return Outcome.PERMISSION_DENIED if denied or "not authorized" in text else Outcome.ERROR
    if errors is not None and isinstance(exc, errors.DatabaseError):
        login = errno == 250001 or (isinstance(errno, int) and 390000 <= errno < 391000)
        return Outcome.AUTH_FAILED if login or "incorrect username" in text else Outcome.ERROR
    if isinstance(exc, TimeoutError):
        return Outcome.TIMEOUT
    if isinstance(exc, OSError):
        return Outcome.CONNECTION_ERROR
    return Outcome.ERROR


def _timeout_kwargs(seconds: float, factory: Callable[..., Any]) -> dict[str, Any]:
    whole = max(1, math.ceil(seconds))
    if getattr(factory, "__module__", "").startswith("snowflake.connector"):
        from snowflake.connector import __version__

        if int(__version__.split(".")[0]) >= 5:
            # 5.x deprecates network_timeout in favour of these (same meaning, split up), and
            # warns unless told whether to look for async queries before logging out: we run
            # none, so it may always log out.
            return {
                "login_timeout": whole,
                "query_timeout": whole,
                "request_timeout": whole,
                "connect_timeout": whole,
                "enable_server_session_keep_alive_auto_detection": False,
            }
    return {"login_timeout": whole, "network_timeout": whole}


def _rows(cursor: Any) -> list[dict[str, Any]]:
    names = [str(d[0]).lower() for d in cursor.description or []]
    return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "y", "yes")


def _same_account(configured: str, row: dict[str, Any]) -> bool:
    wanted = configured.upper().split(".SNOWFLAKECOMPUTING")[0].replace(".", "-")
    org, name = str(row.get("organization_name") or ""), str(row.get("account_name") or "")
    return wanted in {f"{org}-{name}".upper(), str(row.get("account_locator") or "").upper()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)  # VARIANT columns arrive as JSON text
        except ValueError:
            return value
    return value


class SnowflakeConnector(Connector):
    platform = "snowflake"

    def __init__(self, connection_factory: Callable[..., Any] | None = None) -> None:
        self._factory = connection_factory

    def connection_factory(self) -> Callable[..., Any]:
        if self._factory is not None:
            return self._factory
        from django.conf import settings

        path = (
            getattr(settings, "BC_SNOWFLAKE_CONNECTION_FACTORY", "") if settings.configured else ""
        )
        if path:
            module_name, _, attr = path.partition(":")
            return getattr(import_module(module_name), attr or "connect")
        import snowflake.connector

        return snowflake.connector.connect

    def capabilities(self, target: Target | None = None) -> dict[str, Capability]:
        conditional = Support.CONDITIONAL
        return {
            "monitor": Capability(Support.YES),
            "replication_marker": Capability(
                conditional,
                "the primary snapshot timestamp of the last completed refresh says up to when "
                "the secondary is complete; there is no position on the primary to compare it to",
            ),
            "heartbeat": Capability(
                Support.NO,
                "not applicable: refreshes copy snapshots; the refresh history's snapshot "
                "timestamp already dates the data on the secondary",
            ),
            "switchover": Capability(conditional, _PROMOTE),
            "failover": Capability(conditional, _PROMOTE),
            "failback": Capability(conditional, _PROMOTE),
            # Read-only: the age of the last refreshed snapshot against the RPO target.
            "drill": Capability(Support.YES),
        }

    def plan(self, kind: str, target: Target) -> list[PlanStep]:
        """Steps for switchover, failback, failover and drill (``snowflake_plan``)."""
        from connectors.platforms import snowflake_plan  # it imports this module's helpers

        return snowflake_plan.build(self, kind, target)

    def observe(self, target: Target) -> Observation:
        observed_at = datetime.now(UTC)
        conn = with_defaults(self.platform, dict(target.connection))
        accounts = {"primary": conn.get("primary_account", ""), "dr": conn.get("dr_account", "")}
        group = str(conn.get("failover_group") or "")
        # SecretError propagates on purpose: the collection reports unresolvable secrets.
        creds = dict(target.credentials("monitor") or {})
        factory = self.connection_factory()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="snowflake-observe") as pool:
            futures = {
                site: pool.submit(self._side, site, acct, group, conn, creds, factory, target)
                for site, acct in accounts.items()
            }
            sides = {site: future.result() for site, future in futures.items()}
        return self._assemble(observed_at, group, sides["primary"], sides["dr"])

    def _side(
        self,
        site: str,
        account: str,
        group: str,
        conn: dict[str, Any],
        creds: dict[str, str],
        factory: Callable[..., Any],
        target: Target,
    ) -> _Side:
        side = _Side(SideObservation(site=site, endpoint=account))
        if not account or not _IDENTIFIER.match(group):
            side.obs.outcome = Outcome.NOT_CONFIGURED
            side.obs.error = f"{site}_account and a plain failover_group name are required"
            return side
        kwargs: dict[str, Any] = {
            "account": account,
            "user": creds.get("username") or creds.get("user", ""),
            "password": creds.get("password", ""),
            "application": "bcservice",
            **_timeout_kwargs(target.timeout_seconds, factory),
        }
        kwargs.update({k: conn[k] for k in ("role", "warehouse", "database") if conn.get(k)})
        connection = None
        try:
            connection = factory(**kwargs)
            cursor = connection.cursor()
            cursor.execute("SHOW FAILOVER GROUPS")
            side.rows = [
                r for r in _rows(cursor) if str(r.get("name", "")).upper() == group.upper()
            ]
            side.row = next((r for r in side.rows if _same_account(account, r)), None)
            if side.row is None:
                side.obs.outcome = Outcome.ERROR
                side.obs.error = (
                    f"failover group {group} is not visible in {account}: it does not exist "
                    "there, or the role has no MONITOR privilege on it"
                )
                return side
            if not _truthy(side.row.get("is_primary")):
                # Only the account holding the secondary group has refresh history.
                schema = f"{conn['database']}." if conn.get("database") else ""
                cursor.execute(HISTORY_SQL.format(schema=schema, group=group.upper()))
                side.history = _rows(cursor)
        except Exception as exc:  # every driver failure becomes an outcome, never an exception
            side.obs.outcome = classify(exc)
            side.obs.error = _text(exc, creds)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):  # closing a broken session may fail too
                    connection.close()
        if side.row is not None:
            self._describe(side)
        return side

    @staticmethod
    def _describe(side: _Side) -> None:
        row, obs = side.row or {}, side.obs
        is_primary = _truthy(row.get("is_primary"))
        obs.role = Role.PRIMARY if is_primary else Role.STANDBY
        obs.healthy = is_primary or row.get("secondary_state") == "STARTED"
        obs.details = {
            "account_name": row.get("account_name"),
            "account_locator": row.get("account_locator"),
            "snowflake_region": row.get("snowflake_region"),
            "is_primary": is_primary,
            "primary": row.get("primary"),
            "secondary_state": row.get("secondary_state"),
            "replication_schedule": row.get("replication_schedule"),
            "next_scheduled_refresh": _jsonable(row.get("next_scheduled_refresh")),
        }

    def _assemble(
        self, observed_at: datetime, group: str, primary: _Side, dr: _Side
    ) -> Observation:
        obs = Observation(observed_at=observed_at, primary=primary.obs, dr=dr.obs)
        obs.raw = {
            s.obs.site: {
                "show_failover_groups": [{k: _jsonable(v) for k, v in r.items()} for r in s.rows],
                "refresh_history": [
                    {k: _jsonable(v) for k, v in r.items()} for r in (s.history or [])[:5]
                ],
            }
            for s in (primary, dr)
            if s.rows
        }
        seen = [s for s in (primary, dr) if s.row is not None]
        secondary = next((s for s in seen if s.obs.role == Role.STANDBY), None)
        if secondary is not None and secondary.history is not None:
            self._lag(obs, secondary)
        obs.replication = self._replication(obs, seen, secondary)
        return obs

    @staticmethod
    def _lag(obs: Observation, secondary: _Side) -> None:
        history = secondary.history or []
        completed = [r for r in history if str(r.get("phase_name")).upper() == "COMPLETED"]
        snapshots = [
            r["primary_snapshot_timestamp"]
            for r in completed
            if r.get("primary_snapshot_timestamp")
        ]
        if snapshots:
            snapshot = max(snapshots)
            if snapshot.tzinfo is None:  # TIMESTAMP_LTZ comes back aware; be safe anyway
                snapshot = snapshot.replace(tzinfo=UTC)
            obs.dr_marker = snapshot.isoformat()
            obs.marker_available = True
            obs.lag_seconds = max(0.0, (obs.observed_at - snapshot).total_seconds())
        else:
            obs.notes.append("no completed refresh in the refresh history window (12 h)")
        running = [r for r in history if str(r.get("phase_name")).upper() not in _FINISHED]
        if running:
            obs.notes.append(f"refresh in progress: {running[0].get('phase_name')}")
        finished = [r for r in history if str(r.get("phase_name")).upper() in _FINISHED]
        if finished and str(finished[0].get("phase_name")).upper() != "COMPLETED":
            obs.notes.append(f"the latest refresh ended {finished[0].get('phase_name')}")

    @staticmethod
    def _replication(obs: Observation, seen: list[_Side], secondary: _Side | None) -> Replication:
        primaries = [s for s in seen if s.obs.role == Role.PRIMARY]
        if len(primaries) > 1:
            obs.notes.append("both accounts hold the primary failover group")
            return Replication.BROKEN
        if not (obs.primary.reachable and obs.dr.reachable):
            return Replication.UNKNOWN
        if secondary is None:
            obs.notes.append("neither account holds a secondary of the failover group")
            return Replication.BROKEN
        row = secondary.row or {}
        if row.get("secondary_state") == "SUSPENDED":
            obs.notes.append("scheduled refreshes are suspended on the secondary")
            return Replication.PAUSED
        if not row.get("replication_schedule"):
            obs.notes.append("no replication schedule: the secondary refreshes only when asked")
            return Replication.STOPPED
        if any("ended FAILED" in note for note in obs.notes):
            return Replication.BROKEN
        return Replication.STREAMING


def _text(exc: BaseException, creds: dict[str, str]) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for value in creds.values():
        if value and len(value) > 3:
            text = text.replace(value, "***")
    return text[:300]
