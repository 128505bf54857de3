"""``ALTER FAILOVER GROUP`` for the scripted Snowflake connection (``snowflake_sql``).

Executed in one account of the lab's state file, as Snowflake runs them in the target account:

- ``REFRESH``: synchronous; blocks ``manual_refresh_seconds`` and records a COMPLETED refresh
  whose ``primary_snapshot_timestamp`` is its start. Fails (and records a FAILED job) when the
  account holding the primary group is down.
- ``PRIMARY``: the group in this account becomes primary; the other one secondary (STARTED).
- ``SUSPEND`` / ``RESUME``: scheduled refreshes of this secondary stop / start.

Privileges as Snowflake checks them: a role with no privilege on the group does not see it
(errno 2003 "does not exist or not authorized"); with some privilege but not the one needed
(FAILOVER for PRIMARY, REPLICATE for the others) it gets "Insufficient privileges" (errno 3001,
SQLSTATE 42501). Running these in the account that holds the primary group is refused; that
message and its errno (3000, SQLSTATE 55000) are the lab's own wording, not checked against
Snowflake.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from snowflake.connector.errors import ProgrammingError

from connectors.lab.snowflake_sim import add_refresh

if TYPE_CHECKING:
    from connectors.lab.snowflake_sql import ScriptedConnection

ALTER = re.compile(
    r"^\s*ALTER\s+FAILOVER\s+GROUP\s+(?:IF\s+EXISTS\s+)?(?P<name>[A-Za-z_][\w$]*)\s+"
    r"(?P<action>REFRESH|PRIMARY|SUSPEND|RESUME)\s*;?\s*$",
    re.IGNORECASE,
)
STATUS_COLUMNS = (("status", 2),)  # TEXT
_DONE = [("Statement executed successfully.",)]
_NEEDS = {"PRIMARY": "FAILOVER", "REFRESH": "REPLICATE", "SUSPEND": "REPLICATE"}
_NEEDS["RESUME"] = "REPLICATE"


def alter_failover_group(
    conn: ScriptedConnection, match: re.Match[str], query_id: str
) -> list[tuple[Any, ...]]:
    """Run one ALTER FAILOVER GROUP statement in ``conn``'s account; rows of ``status``."""
    name, action = match["name"].upper(), match["action"].upper()
    state = conn.store.read() or {}
    group = state.get("failover_group", "")
    privileges = set(state.get("users", {}).get(conn.user, {}).get("privileges", []))
    if name != group or not privileges:
        raise ProgrammingError(
            msg=f"SQL compilation error:\nFailover group '{name}' does not exist or not "
            "authorized.",
            errno=2003,
            sqlstate="02000",
            sfqid=query_id,
        )
    if _NEEDS[action] not in privileges and "OWNERSHIP" not in privileges:
        raise ProgrammingError(
            msg=f"SQL access control error:\nInsufficient privileges to operate on failover "
            f"group '{name}'",
            errno=3001,
            sqlstate="42501",
            sfqid=query_id,
        )
    if state.get("primary_site") == conn.site:
        raise ProgrammingError(
            msg=f"Failover group '{name}' in this account is the primary: {action} runs in an "
            "account that holds a secondary of the group.",
            errno=3000,
            sqlstate="55000",
            sfqid=query_id,
        )
    if action == "REFRESH":
        _refresh(conn, state, name, query_id)
        return list(_DONE)
    with conn.store.update() as current:
        if action == "PRIMARY":
            current["primary_site"] = conn.site
            current["secondary_state"] = "STARTED"  # the old primary's group, now a secondary
            current.setdefault("failovers", []).append({"at": time.time(), "to": conn.site})
        else:
            current["secondary_state"] = "SUSPENDED" if action == "SUSPEND" else "STARTED"
    return list(_DONE)


def _refresh(conn: ScriptedConnection, state: dict[str, Any], name: str, query_id: str) -> None:
    started = time.time()
    time.sleep(float(state.get("manual_refresh_seconds", 0.2)))
    faults = set(state.get("faults", []))
    down = {site for site, fault in (("primary", "primary_down"), ("dr", "standby_down"))
            if fault in faults}  # fmt: skip
    with conn.store.update() as current:
        if current.get("primary_site") in down:
            current["refreshes"].append(
                {
                    "job_uuid": str(uuid.uuid4()),
                    "secondary_site": conn.site,
                    "phase_name": "FAILED",
                    "start_time": started,
                    "end_time": time.time(),
                    "primary_snapshot_timestamp": None,
                    "total_bytes": {},
                    "object_count": {},
                    "error": {"message": "source account unavailable"},
                }
            )
            failed = True
        else:
            add_refresh(current, time.time(), start=started)
            failed = False
    if failed:
        raise ProgrammingError(
            msg=f"Refresh of failover group '{name}' failed: the account holding the primary "
            "group cannot be reached.",
            errno=3000,
            sqlstate="55000",
            sfqid=query_id,
        )
