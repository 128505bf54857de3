"""Building and repairing the lab's PostgreSQL pair; used by ``connectors.lab.postgres.PgPair``.

Plain functions over the pair's state (the content of ``pair.json``: ports, passwords, data
root, slot name), so that ``PgPair`` itself stays the small steerable interface. Everything here
connects over TCP as the lab's ``bc_admin`` superuser.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from connectors.lab.pg_server import (
    BY_SITE,
    NODES,
    PG_BIN,
    SERVER_USER,
    PgLabError,
    PgServer,
    give_to_server,
    node_servers,
    run,
)

HOST, DBNAME = "127.0.0.1", "postgres"
ADMIN, MONITOR, REPLICATOR = "bc_admin", "bc_monitor", "bc_replication"
HEARTBEAT_TABLE = "bc_heartbeat"
STREAMING_WAIT_SECONDS = 15.0

# Appended to the primary's postgresql.conf before the standby is copied from it.
SERVER_SETTINGS = """
# --- bcservice lab ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''        # TCP only: no socket path to collide or to be too long
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
wal_keep_size = '64MB'
wal_log_hints = on                  # pg_rewind needs it (rejoin after a failover)
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = '1s' # pg_stat_replication shows replay progress within a second
wal_retrieve_retry_interval = '200ms' # a standby reconnects quickly after its primary restarts
max_connections = 40
shared_buffers = '16MB'
fsync = off                         # lab only: nothing here must survive an OS crash; much faster
log_line_prefix = '%m [%p] %q%u@%d '
"""

State = dict[str, Any]


def servers(state: State) -> dict[str, PgServer]:
    return node_servers(state)


def connect(state: State, node: str, role: str = "execute", timeout: int = 5) -> psycopg.Connection:
    """An autocommit connection to a configured node as bc_admin (``execute``) or bc_monitor."""
    user = ADMIN if role == "execute" else MONITOR
    return psycopg.connect(
        host=HOST,
        port=int(state["ports"][node]),
        dbname=DBNAME,
        user=user,
        password=state["passwords"][user],
        sslmode="disable",
        connect_timeout=timeout,
        application_name="bc-lab",
        autocommit=True,
    )


# -- creation -----------------------------------------------------------------------------


def create_primary(state: State, primary: PgServer) -> None:
    """initdb with bc_admin as the bootstrap superuser, the lab settings, roles, heartbeat."""
    give_to_server(Path(state["data_root"]))
    primary.initdb(ADMIN, state["passwords"][ADMIN])
    with open(primary.data_dir / "postgresql.conf", "a") as fh:
        fh.write(SERVER_SETTINGS)
    primary.start()
    pw = state["passwords"]
    monitor, table = sql.Identifier(MONITOR), sql.Identifier(HEARTBEAT_TABLE)
    statements = [
        # Read-only monitoring: pg_monitor and SELECT on the heartbeat table, nothing else.
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor").format(
            monitor, sql.Literal(pw[MONITOR])
        ),
        # Belt and braces: it could not write anyway.
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(monitor),
        sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
            sql.Identifier(REPLICATOR), sql.Literal(pw[REPLICATOR])
        ),
        sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, ts timestamptz NOT NULL)").format(table),
        sql.SQL("INSERT INTO {} VALUES (1, clock_timestamp())").format(table),
        sql.SQL("GRANT SELECT ON {} TO {}").format(table, monitor),
    ]
    with connect(state, "primary") as conn:
        for statement in statements:
            conn.execute(statement)


def create_standby(state: State, nodes: dict[str, PgServer]) -> None:
    """(Re)copy the standby node from the primary node, which must be the running primary."""
    primary, standby = nodes["primary"], nodes["standby"]
    standby.remove()
    with connect(state, "primary") as conn:
        # A slot left from an earlier copy of the standby would make -C fail.
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (state["slot"],),
        )
    run(
        [
            "pg_basebackup",
            *("-h", HOST, "-p", str(primary.port), "-U", REPLICATOR),
            *("-D", str(standby.data_dir), "-R", "-X", "stream"),
            *("-C", "-S", state["slot"], "-c", "fast", "--no-sync"),
        ],
        # -R writes this password into the standby's postgresql.auto.conf (mode 0600).
        env={"PGPASSWORD": state["passwords"][REPLICATOR], "HOME": state["data_root"]},
    )
    standby.start()


# -- roles ----------------------------------------------------------------------------------


def in_recovery(state: State, server: PgServer) -> bool | None:
    """Whether the node is a standby; None when it cannot be asked (stopped or frozen)."""
    if not server.running() or server.frozen():
        return None
    try:
        with connect(state, server.label, timeout=3) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return bool(row[0]) if row else None
    except psycopg.Error:
        return None


def roles(state: State, nodes: dict[str, PgServer]) -> dict[str, str | None]:
    """Which configured node is primary and which is standby now (None: none can be seen)."""
    seen = {label: in_recovery(state, server) for label, server in nodes.items()}
    return {
        "primary": next((n for n in NODES if seen[n] is False), None),
        "standby": next((n for n in NODES if seen[n] is True), None),
    }


def timeline(state: State, node: str) -> int:
    """The timeline a node writes on (primary) or last checkpointed on (standby)."""
    with connect(state, node) as conn:
        row = conn.execute(
            "SELECT CASE WHEN pg_is_in_recovery() "
            "THEN (SELECT timeline_id FROM pg_control_checkpoint()) "
            "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int "
            "END"
        ).fetchone()
    return int(row[0]) if row else 0


def restore_roles(state: State, nodes: dict[str, PgServer]) -> None:
    """Make the primary node the primary and the standby node its streaming standby again."""
    primary, standby = nodes["primary"], nodes["standby"]
    p_rec, s_rec = in_recovery(state, primary), in_recovery(state, standby)
    # The usual case. A standby on a newer timeline than its primary (promoted, then made a
    # standby again without a rewind) can never follow and is rebuilt below.
    if (
        p_rec is False
        and s_rec is True
        and timeline(state, "standby") <= timeline(state, "primary")
    ):
        return
    if p_rec is None:
        raise PgLabError(f"the primary node does not answer; log: {primary.log_tail()}")
    if p_rec:
        if s_rec is False:
            # Switched over: a clean shutdown of the DR primary streams all of its WAL (up to
            # the shutdown checkpoint) to the primary-site node before it exits.
            standby.stop("fast")
        with connect(state, "primary") as conn:
            conn.execute("SELECT pg_promote(true, 60)")
    # Both nodes primary (a failover or drill promoted DR), a diverged or missing standby, or
    # DR just handed back: the DR node is copied afresh; its writes as a primary are discarded.
    create_standby(state, nodes)


def wait_streaming(state: State) -> bool:
    """Wait until the current primary streams to the standby and the standby has replayed what
    the primary had written when streaming began (writes may go on meanwhile)."""
    deadline = time.monotonic() + STREAMING_WAIT_SECONDS
    now = roles(state, servers(state))
    if now["primary"] is None or now["standby"] is None:
        return False
    target = None
    with (
        contextlib.suppress(psycopg.Error),
        connect(state, now["primary"]) as primary,
        connect(state, now["standby"]) as standby,
    ):
        while time.monotonic() < deadline:
            if target is None:
                row = primary.execute(
                    "SELECT pg_current_wal_lsn()::text FROM pg_stat_replication "
                    "WHERE state = 'streaming' LIMIT 1"
                ).fetchone()
                target = row[0] if row else None
            if target is not None:
                row = standby.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if row and row[0]:
                    return True
            time.sleep(0.05)
    return False


# -- host actions ---------------------------------------------------------------------------


def host_action_templates(state: State, base_dir: Path) -> dict[str, Any]:
    """The worker's command templates for this pair (connectors/platforms/postgres_actions.py).

    ``stop`` calls pg_ctl directly: it runs while writes are unavailable, and a Python start-up
    that imports psycopg costs 0.3-1 s on a busy host. The others go through
    ``python -m connectors.lab.pg_hostaction``, which knows the pair's layout."""
    as_server = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
    by_site = str(Path(state["data_root"]) / BY_SITE / "{node}")
    cli = [sys.executable, "-m", "connectors.lab.pg_hostaction", "--pair", str(base_dir)]
    node = ["--node", "{node}"]
    upstream = ["--source-host", "{new_primary_host}", "--source-port", "{new_primary_port}"]
    pg_ctl_stop = [str(PG_BIN / "pg_ctl"), "-D", by_site, "-m", "fast", "-w", "-t", "60", "stop"]
    return {
        "stop": {"argv": [*as_server, *pg_ctl_stop], "timeout_seconds": 90},
        "start": {"argv": [*cli, "start", *node], "timeout_seconds": 90},
        "restart": {"argv": [*cli, "restart", *node], "timeout_seconds": 120},
        "rejoin": {
            "argv": [*cli, "rejoin", *node, *upstream, "--slot", "{slot}", "--rebuild-on-failure"],
            "timeout_seconds": 300,
        },
    }
