"""A Snowflake failover group for the lab: a JSON state file plus a scripted DB-API connection.

No Snowflake runs locally (fakesnow neither imports with connector 5.x nor parses the
replication commands), so ``connect(**kwargs)`` returns a scripted DB-API 2 connection
(``connectors.lab.snowflake_sql``) answering ``SHOW FAILOVER GROUPS`` and
``INFORMATION_SCHEMA.REPLICATION_GROUP_REFRESH_HISTORY`` with rows shaped like the documented
output, and raising the real ``snowflake.connector.errors`` classes. Set
``BC_SNOWFLAKE_CONNECTION_FACTORY = "connectors.lab.snowflake_sim:connect"`` to use it.

The state lives in one JSON file (``$BC_LAB_DIR/snowflake.json`` unless given) so the web
process, the worker and the lab daemon share it: the daemon calls ``SnowflakeLab.tick()`` and a
refresh of the secondary completes every ``refresh_interval`` seconds unless a fault stops it.
Writers hold an ``flock`` and replace the file atomically; readers never see half a file.
Every SQL statement received is appended to ``snowflake-statements.jsonl`` next to it.

The execution statements change the state like Snowflake would (``snowflake_sql``):
``ALTER FAILOVER GROUP <g> REFRESH`` completes a refresh of the secondary synchronously,
``... PRIMARY`` moves the primary group to the account it runs in (``primary_site`` flips),
``... SUSPEND``/``RESUME`` set ``secondary_state``. Faults name the configured accounts:
``primary_down`` is the account of the primary site, whatever it holds now.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FAULTS = ("lag", "pause", "standby_down", "primary_down", "timeout", "heal")
ORGANIZATION = "BCLAB"
GROUP = "BC_FAILOVER"
MONITOR_USER, EXECUTE_USER = "BC_MONITOR", "BC_EXECUTE"
REFRESH_SECONDS = 2.0  # how long one scheduled lab refresh takes (start_time .. end_time)
MANUAL_REFRESH_SECONDS = 0.2  # how long ALTER FAILOVER GROUP ... REFRESH blocks in the lab
_HISTORY_KEEP = 200


def default_state_path() -> Path:
    """``$BC_LAB_DIR/snowflake.json``; else ``settings.BC_LAB_DIR`` when Django is configured."""
    lab_dir = os.environ.get("BC_LAB_DIR")
    if not lab_dir:
        try:
            from django.conf import settings

            lab_dir = str(settings.BC_LAB_DIR) if settings.configured else ""
        except Exception:  # no Django here: fall back to the repository default
            lab_dir = ""
    return Path(lab_dir or "var/lab") / "snowflake.json"


def _account(name: str, locator: str, region: str) -> dict[str, str]:
    return {"account_name": name, "locator": locator, "region": region}


def _new_state(refresh_interval: float, now: float) -> dict[str, Any]:
    def password() -> str:
        return secrets.token_urlsafe(18)

    state: dict[str, Any] = {
        "organization": ORGANIZATION,
        "failover_group": GROUP,
        "created_on": now,
        # Keys are the configured sites; "primary_site" says which one holds the primary group
        # (an executed failover would flip it).
        "accounts": {
            "primary": _account("LONDON_PRIMARY", "LP12345", "AWS_EU_WEST_2"),
            "dr": _account("DUBLIN_DR", "DD67890", "AWS_EU_WEST_1"),
        },
        "primary_site": "primary",
        "secondary_state": "STARTED",
        "refresh_interval": refresh_interval,
        "refreshes": [],
        "failovers": [],
        "faults": [],
        "running": True,
        "manual_refresh_seconds": MANUAL_REFRESH_SECONDS,
        "users": {
            MONITOR_USER: {"password": password(), "privileges": ["MONITOR"]},
            # FAILOVER: ALTER FAILOVER GROUP ... PRIMARY; REPLICATE: ... REFRESH/SUSPEND/RESUME.
            EXECUTE_USER: {
                "password": password(),
                "privileges": ["FAILOVER", "REPLICATE", "MONITOR"],
            },
        },
    }
    add_refresh(state, now)
    return state


def add_refresh(state: dict[str, Any], end: float, start: float | None = None) -> dict[str, Any]:
    """Record a completed refresh of the current secondary; the snapshot is taken at its start."""
    start = end - REFRESH_SECONDS if start is None else start
    secondary_site = "dr" if state.get("primary_site", "primary") == "primary" else "primary"
    databases = [{"name": "ANALYTICS", "totalBytesToReplicate": 52_428_800}]
    job = {
        "job_uuid": str(uuid.uuid4()),
        # The account holding the secondary that was refreshed: only there does the history
        # function list the job.
        "secondary_site": secondary_site,
        "phase_name": "COMPLETED",
        "start_time": start,
        "end_time": end,
        # The secondary holds the primary as of this instant, taken when the refresh began.
        "primary_snapshot_timestamp": start,
        "total_bytes": {
            "totalBytesToReplicate": 52_428_800,
            "bytesUploaded": 52_428_800,
            "bytesDownloaded": 52_428_800,
            "databases": databases,
        },
        "object_count": {
            "totalObjects": 48,
            "completedObjects": 48,
            "objectTypes": [{"objectType": "tables", "totalObjects": 40, "completedObjects": 40}],
        },
    }
    state["refreshes"].append(job)
    del state["refreshes"][:-_HISTORY_KEEP]
    return job


class StateFile:
    """The shared JSON state: atomic reads, locked read-modify-write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.statements_path = self.path.with_name("snowflake-statements.jsonl")

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Lock, yield the state for changes, write it back atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read() or {}
            yield state
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=1))
            tmp.chmod(0o600)  # holds the lab passwords
            tmp.replace(self.path)

    def record(self, entry: dict[str, Any]) -> None:
        # One short line per append: O_APPEND writes from several processes do not interleave.
        line = json.dumps(entry, default=str) + "\n"
        fd = os.open(self.statements_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def statements(self) -> list[dict[str, Any]]:
        try:
            lines = self.statements_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


class SnowflakeLab:
    """Owns the state file: start/stop, faults, and the refresh clock (``tick``)."""

    platform = "snowflake"
    faults = FAULTS

    def __init__(self, state_path: Path | None = None, refresh_interval: float = 60.0) -> None:
        self.state = StateFile(Path(state_path) if state_path else default_state_path())
        self.refresh_interval = refresh_interval

    def start(self) -> dict[str, Any]:
        """Create the state on first use (keeping passwords and faults across restarts)."""
        now = time.time()
        with self.state.update() as state:
            if not state.get("accounts"):
                state.update(_new_state(self.refresh_interval, now))
            state["running"] = True
            state["refresh_interval"] = self.refresh_interval
        return self.connection_info()

    def connection_info(self) -> dict[str, Any]:
        state = self.state.read() or {}
        org, accounts, users = state["organization"], state["accounts"], state["users"]
        return {
            "connection": {
                "primary_account": f"{org}-{accounts['primary']['account_name']}",
                "dr_account": f"{org}-{accounts['dr']['account_name']}",
                "failover_group": state["failover_group"],
                "database": "ANALYTICS",
                "role": "BC_MONITOR_ROLE",
            },
            "credentials": {
                purpose: {"username": user, "password": users[user]["password"]}
                for purpose, user in (("monitor", MONITOR_USER), ("execute", EXECUTE_USER))
            },
        }

    def stop(self) -> None:
        """Accounts refuse connections until the next start (as the other lab targets do)."""
        if self.state.read() is not None:
            with self.state.update() as state:
                state["running"] = False

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        with self.state.update() as state:
            if not state:
                raise RuntimeError("the Snowflake lab has not been started")
            faults = set(state.get("faults", []))
            if fault == "heal":
                faults.clear()
                state["secondary_state"] = "STARTED"
            else:
                faults.add(fault)
                if fault == "pause":  # ALTER FAILOVER GROUP ... SUSPEND
                    state["secondary_state"] = "SUSPENDED"
            state["faults"] = sorted(faults)

    def add_user(self, username: str, password: str, privileges: tuple[str, ...] = ()) -> None:
        """A user whose role has ``privileges`` on the group (tests use one with none)."""
        with self.state.update() as state:
            state["users"][username.upper()] = {
                "password": password,
                "privileges": list(privileges),
            }

    def tick(self, now: float | None = None) -> bool:
        """Complete a refresh of the secondary when one is due; True when one was added."""
        now = time.time() if now is None else now
        current = self.state.read()
        if not current or not self._refreshing(current, now):
            return False
        with self.state.update() as state:
            if not self._refreshing(state, now):
                return False
            add_refresh(state, now)
            return True

    @staticmethod
    def _refreshing(state: dict[str, Any], now: float) -> bool:
        # "lag" stops refreshes silently; a suspended group or an unreachable account cannot
        # refresh either. A "timeout" is between us and the DR account: refreshes go on.
        blocked = {"lag", "pause", "standby_down", "primary_down"} & set(state.get("faults", []))
        if blocked or not state.get("running") or state.get("secondary_state") != "STARTED":
            return False
        last_end = max((r["end_time"] for r in state.get("refreshes", [])), default=0.0)
        return now - last_end >= float(state.get("refresh_interval", 60))

    def status(self) -> dict[str, Any]:
        state = self.state.read()
        if not state:
            return {"platform": self.platform, "running": False}
        completed = [r for r in state["refreshes"] if r["phase_name"] == "COMPLETED"]
        last = completed[-1] if completed else None
        now = time.time()
        return {
            "platform": self.platform,
            "running": state.get("running", False),
            "failover_group": state["failover_group"],
            "primary_site": state["primary_site"],
            "secondary_state": state["secondary_state"],
            "faults": state.get("faults", []),
            "refresh_interval_seconds": state.get("refresh_interval"),
            "last_refresh_end": last["end_time"] if last else None,
            "lag_seconds": round(now - last["primary_snapshot_timestamp"], 1) if last else None,
            "statements_received": len(self.state.statements()),
        }

    def received_statements(self) -> list[dict[str, Any]]:
        """Every SQL statement any process sent: {at, account, user, sql, pid}, oldest first."""
        return self.state.statements()


def connect(state_path: str | Path | None = None, **kwargs: Any) -> Any:
    """DB-API ``connect`` for the lab: usable as ``BC_SNOWFLAKE_CONNECTION_FACTORY``."""
    from connectors.lab.snowflake_sql import ScriptedConnection

    path = Path(state_path) if state_path else default_state_path()
    return ScriptedConnection.open(StateFile(path), **kwargs)
