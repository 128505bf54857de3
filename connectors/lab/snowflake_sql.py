"""The scripted DB-API 2 connection behind ``connectors.lab.snowflake_sim.connect``.

It answers the statements the monitoring connector sends, with rows and column names shaped like
Snowflake's documented output (SHOW commands: lower-case column names, booleans as the text
``true``/``false``; SELECT: upper-case unquoted names; TIMESTAMP_LTZ as aware datetimes; VARIANT
as JSON text, as the Python connector returns them), and fails the way the real connector does,
with the real ``snowflake.connector.errors`` classes, errno and SQLSTATE values of connector 5.x
(IO errors: OperationalError errno 4; timeouts: errno 14, SQLSTATE HYT00; bad login:
DatabaseError 390100). ``ALTER FAILOVER GROUP <g> REFRESH | PRIMARY | SUSPEND | RESUME`` change
the state file (``connectors.lab.snowflake_exec``). Statements it does not model are recorded and
refused with a ProgrammingError, so an execution test sees exactly what was attempted.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from snowflake.connector.errors import DatabaseError, OperationalError, ProgrammingError

from connectors.lab.snowflake_exec import ALTER, STATUS_COLUMNS, alter_failover_group

if TYPE_CHECKING:
    from connectors.lab.snowflake_sim import StateFile

# Snowflake type codes (snowflake.connector.constants.FIELD_TYPES) used in ``description``.
FIXED, TEXT, VARIANT, TIMESTAMP_LTZ = 0, 2, 5, 6
SHOW_COLUMNS = (
    ("region_group", TEXT),
    ("snowflake_region", TEXT),
    ("created_on", TIMESTAMP_LTZ),
    ("account_name", TEXT),
    ("name", TEXT),
    ("type", TEXT),
    ("comment", TEXT),
    ("is_primary", TEXT),
    ("primary", TEXT),
    ("object_types", TEXT),
    ("allowed_integration_types", TEXT),
    ("allowed_accounts", TEXT),
    ("organization_name", TEXT),
    ("account_locator", TEXT),
    ("replication_schedule", TEXT),
    ("secondary_state", TEXT),
    ("next_scheduled_refresh", TIMESTAMP_LTZ),
    ("owner", TEXT),
    ("is_listing_auto_fulfillment_group", TEXT),
)
HISTORY_COLUMNS = (
    ("PHASE_NAME", TEXT),
    ("START_TIME", TIMESTAMP_LTZ),
    ("END_TIME", TIMESTAMP_LTZ),
    ("JOB_UUID", TEXT),
    ("TOTAL_BYTES", VARIANT),
    ("OBJECT_COUNT", VARIANT),
    ("PRIMARY_SNAPSHOT_TIMESTAMP", TIMESTAMP_LTZ),
    ("ERROR", VARIANT),
)
_SHOW = re.compile(
    r"^\s*SHOW\s+FAILOVER\s+GROUPS(?:\s+LIKE\s+'(?P<like>[^']*)')?"
    r"(?:\s+IN\s+ACCOUNT\s+(?P<acct>[\w.-]+))?\s*;?\s*$",
    re.IGNORECASE,
)
_HISTORY = re.compile(
    r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+TABLE\s*\(\s*(?:[\w$]+\.)?INFORMATION_SCHEMA\."
    r"REPLICATION_GROUP_REFRESH_HISTORY\s*\(\s*'(?P<group>[^']+)'\s*\)\s*\)"
    r"(?P<rest>.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_LIMIT = re.compile(r"\bLIMIT\s+(\d+)", re.IGNORECASE)
_SCHEDULES = {60: "1 MINUTE", 600: "10 MINUTE"}


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _site_for(state: dict[str, Any], account: str) -> str | None:
    """Which configured site an account identifier (org-name, org.name or locator) points to."""
    wanted = account.upper().replace(".", "-").split(".snowflakecomputing")[0]
    for site, info in state["accounts"].items():
        names = {f"{state['organization']}-{info['account_name']}", info["locator"]}
        if wanted in {n.upper() for n in names}:
            return site
    return None


class ScriptedConnection:
    def __init__(self, store: StateFile, site: str, account: str, user: str) -> None:
        self.store, self.site, self.account, self.user = store, site, account, user
        self.closed = False

    @classmethod
    def open(cls, store: StateFile, **kwargs: Any) -> ScriptedConnection:
        account = str(kwargs.get("account", ""))
        state = store.read()
        if not state or not state.get("running"):
            raise OperationalError(
                msg=f"Failed to connect to {account}.snowflakecomputing.com:443: lab not running",
                errno=4,
            )
        site = _site_for(state, account)
        if site is None:
            raise OperationalError(
                msg=f"404 Not Found: post https://{account}.snowflakecomputing.com:443/session/v1/"
                "login-request",
                errno=4,
            )
        faults = set(state.get("faults", []))
        if ("standby_down" in faults and site == "dr") or (
            "primary_down" in faults and site == "primary"
        ):
            raise OperationalError(
                msg=f"Failed to connect to {account}.snowflakecomputing.com:443: "
                "Connection refused (os error 111)",
                errno=4,
            )
        if "timeout" in faults and site == "dr":
            budget = float(kwargs.get("login_timeout") or 120)
            time.sleep(min(budget, 2.0))  # short: the lab must not hold a worker for long
            raise OperationalError(  # the text 5.x gives (seen against an unreachable host)
                msg=f"Failed to login: login timed out after {budget:g}s",
                errno=14,
                sqlstate="HYT00",
            )
        user = str(kwargs.get("user", "")).upper()
        known = state["users"].get(user)
        if not known or known["password"] != kwargs.get("password"):
            raise DatabaseError(
                msg="Incorrect username or password was specified.", errno=390100, sqlstate="08004"
            )
        return cls(store, site, account, user)

    def cursor(self) -> ScriptedCursor:
        if self.closed:
            raise DatabaseError(msg="Connection is closed", errno=250002, sqlstate="08003")
        return ScriptedCursor(self)

    def close(self) -> None:
        self.closed = True

    def commit(self) -> None:
        """Nothing to commit: ALTER statements take effect at once (autocommit, as DDL)."""

    def rollback(self) -> None:
        """Nothing to roll back."""

    def __enter__(self) -> ScriptedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScriptedCursor:
    arraysize = 1

    def __init__(self, connection: ScriptedConnection) -> None:
        self.connection = connection
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.sfqid: str | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, command: str, params: Any = None) -> ScriptedCursor:
        conn = self.connection
        self.sfqid = str(uuid.uuid4())
        conn.store.record(
            {"at": time.time(), "account": conn.account, "user": conn.user, "sql": command}
            | {"pid": os.getpid(), "query_id": self.sfqid}
        )
        state = conn.store.read() or {}
        privileges = set(state.get("users", {}).get(conn.user, {}).get("privileges", []))
        if match := _SHOW.match(command):
            columns, rows = SHOW_COLUMNS, self._show(state, privileges, match["like"])
        elif match := _HISTORY.match(command):
            columns, rows = self._history(state, privileges, match)
        elif match := ALTER.match(command):
            columns, rows = STATUS_COLUMNS, alter_failover_group(conn, match, self.sfqid)
        else:
            raise ProgrammingError(
                msg=f"SQL compilation error: statement not modelled by the Snowflake lab: "
                f"{command.strip()[:80]!r}",
                errno=1003,
                sqlstate="42000",
                sfqid=self.sfqid,
            )
        self.description = [(name, code, None, None, None, None, True) for name, code in columns]
        self._rows = rows
        self.rowcount = len(rows)
        return self

    def _show(
        self, state: dict[str, Any], privileges: set[str], like: str | None
    ) -> list[tuple[Any, ...]]:
        group = state["failover_group"]
        # SHOW only lists objects on which the current role holds some privilege.
        if not privileges or (like and not re.fullmatch(_like(like), group, re.IGNORECASE)):
            return []
        org, accounts = state["organization"], state["accounts"]
        primary_site = state["primary_site"]
        primary_name = f"{org}.{accounts[primary_site]['account_name']}.{group}"
        allowed = ", ".join(f"{org}.{a['account_name']}" for a in accounts.values())
        interval = int(state.get("refresh_interval", 600))
        schedule = _SCHEDULES.get(interval, f"{max(1, interval // 60)} MINUTE")
        last_end = max((r["end_time"] for r in state["refreshes"]), default=time.time())
        rows = []
        for site, info in accounts.items():
            is_primary = site == primary_site
            secondary_state = None if is_primary else state["secondary_state"]
            next_refresh = None
            if not is_primary and secondary_state == "STARTED":
                next_refresh = _dt(last_end + interval)
            values = {
                "region_group": "PUBLIC",
                "snowflake_region": info["region"],
                "created_on": _dt(state["created_on"]),
                "account_name": info["account_name"],
                "name": group,
                "type": "FAILOVER",
                "comment": None,
                "is_primary": "true" if is_primary else "false",
                "primary": primary_name,
                "object_types": "DATABASES, ROLES, USERS, WAREHOUSES",
                "allowed_integration_types": "",
                "allowed_accounts": allowed,
                "organization_name": org,
                "account_locator": info["locator"],
                "replication_schedule": schedule,
                "secondary_state": secondary_state,
                "next_scheduled_refresh": next_refresh,
                # Ownership shows only in the account whose role owns the group.
                "owner": "ACCOUNTADMIN" if site == self.connection.site else None,
                "is_listing_auto_fulfillment_group": "false",
            }
            rows.append(tuple(values[name] for name, _ in SHOW_COLUMNS))
        return rows

    def _history(
        self, state: dict[str, Any], privileges: set[str], match: re.Match[str]
    ) -> tuple[tuple[tuple[str, int], ...], list[tuple[Any, ...]]]:
        requested = [c.strip().upper() for c in match["cols"].split(",")]
        known = dict(HISTORY_COLUMNS)
        if requested == ["*"]:
            requested = [name for name, _ in HISTORY_COLUMNS]
        unknown = [c for c in requested if c not in known]
        if unknown:
            raise ProgrammingError(
                msg=f"SQL compilation error: error line 1 at position 7 invalid identifier "
                f"'{unknown[0]}'",
                errno=904,
                sqlstate="42000",
                sfqid=self.sfqid,
            )
        columns = tuple((c, known[c]) for c in requested)
        group = match["group"].upper()
        conn_site = self.connection.site
        secondary_here = conn_site != state["primary_site"]
        # The function only returns rows for secondary groups in the current account, and only
        # for a role with a privilege on the group; otherwise the result is empty, not an error.
        if group != state["failover_group"] or not secondary_here or not privileges:
            return columns, []
        limit = _LIMIT.search(match["rest"])
        # Jobs that refreshed the secondary in this account (jobs from before a role swap
        # refreshed the other account's group and are not listed here).
        here = [r for r in state["refreshes"] if r.get("secondary_site", "dr") == conn_site]
        jobs = sorted(here, key=lambda r: r["start_time"], reverse=True)
        if limit:
            jobs = jobs[: int(limit.group(1))]
        rows = []
        for job in jobs:
            values = {
                "PHASE_NAME": job["phase_name"],
                "START_TIME": _dt(job["start_time"]),
                "END_TIME": _dt(job["end_time"]),
                "JOB_UUID": job["job_uuid"],
                "TOTAL_BYTES": json.dumps(job["total_bytes"], indent=2),
                "OBJECT_COUNT": json.dumps(job["object_count"], indent=2),
                "PRIMARY_SNAPSHOT_TIMESTAMP": _dt(job["primary_snapshot_timestamp"]),
                "ERROR": json.dumps(job["error"]) if job.get("error") else None,
            }
            rows.append(tuple(values[c] for c in requested))
        return columns, rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def close(self) -> None:
        self._rows = []

    def __iter__(self) -> Any:
        while (row := self.fetchone()) is not None:
            yield row


def _like(pattern: str) -> str:
    """SQL LIKE -> regular expression (``%`` any run, ``_`` one character)."""
    return "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
