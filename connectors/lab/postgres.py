"""The lab's PostgreSQL target: a real primary and streaming standby on 127.0.0.1.

``PgPair(base_dir)`` creates (initdb, roles, heartbeat table, ``pg_basebackup -R -C -S slot``),
starts, stops and breaks the pair. Everything another process needs (ports, generated passwords,
where the data lives, active faults) is kept in ``base_dir/pair.json`` (mode 0600), so
``PgPair(base_dir)`` in the lab daemon, in ``manage.py lab`` and in a test all steer the same
pair. Changes are serialised across processes with a lock file.

Roles (see docs/connectors/postgres.md): ``bc_admin`` is the bootstrap superuser and the
``execute`` account (a superuser is acceptable in the lab only: production execution accounts get
just what their steps need), ``bc_monitor`` the read-only ``monitor`` account (LOGIN, member of
``pg_monitor``, SELECT on the heartbeat table, nothing else), ``bc_replication`` the standby's
REPLICATION login. Host connections use scram-sha-256.

Faults act on the *current* roles (after a switchover the DR node is the primary):

- ``lag``: the standby applies WAL one hour late (``recovery_min_apply_delay``) while it keeps
  streaming, so lag grows as writes continue and replication still reads as streaming;
- ``pause_replay`` (alias ``pause``): ``pg_wal_replay_pause()`` on the standby;
- ``standby_down``: fast stop of the standby; ``primary_down``: immediate stop of the primary;
- ``timeout``: the standby's postmaster is stopped with SIGSTOP. The kernel still completes the
  TCP handshake, nobody answers, so clients see a real connect timeout; replication keeps running
  (the walreceiver and startup processes are not stopped). Chosen over a TCP proxy because it
  needs no living process and the published ports stay the servers' own;
- ``heal``: undo all of them and bring the pair back to the configured roles (a DR node promoted
  by a failover or drill is rebuilt from the primary; after a switchover the primary-site node is
  promoted again once the DR node has shut down cleanly and handed over all its WAL).

Faults are recorded in ``pair.json`` and survive ``down``/``up`` until ``heal``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from connectors.lab.pg_server import PgLabError, PgServer, give_to_server, run, server_can_reach

__all__ = ["FAULTS", "PgLabError", "PgPair"]

STATE_FILE, LOCK_FILE = "pair.json", "pair.lock"
FAULTS = ("lag", "pause_replay", "pause", "standby_down", "primary_down", "timeout", "heal")
NODES = ("primary", "standby")
HOST, DBNAME = "127.0.0.1", "postgres"
ADMIN, MONITOR, REPLICATOR = "bc_admin", "bc_monitor", "bc_replication"
HEARTBEAT_TABLE = "bc_heartbeat"
LAG_DELAY = "1h"
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class PgPair:
    """A primary (node ``primary``, the primary site) and a standby (node ``standby``, DR)."""

    faults = FAULTS

    def __init__(
        self, base_dir: Path, primary_port: int = 0, standby_port: int = 0, name: str = "pg"
    ) -> None:
        self.base_dir = Path(base_dir)
        # Ports chosen here apply when the pair is created; afterwards pair.json is the truth.
        self._wanted_ports = {"primary": primary_port, "standby": standby_port}
        self.name = re.sub(r"[^a-z0-9_]", "_", name.lower()) or "pg"
        self._hb_conn: psycopg.Connection | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.base_dir / STATE_FILE

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save(self, state: dict[str, Any]) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh, indent=2)
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.base_dir / LOCK_FILE, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _new_state(self) -> dict[str, Any]:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if server_can_reach(self.base_dir):
            data_root = self.base_dir / "data"
        else:
            # e.g. pytest's tmp dirs or /root: the postgres user cannot traverse the parents.
            data_root = Path(tempfile.mkdtemp(prefix=f"bc-{self.name}-", dir="/tmp"))
        ports = {n: self._wanted_ports[n] or _free_port() for n in NODES}
        while ports["standby"] == ports["primary"]:
            ports["standby"] = _free_port()
        return {
            "name": self.name,
            "data_root": str(data_root),
            "ports": ports,
            "slot": f"{self.name}_dr_slot",
            "passwords": {u: secrets.token_urlsafe(18) for u in (ADMIN, MONITOR, REPLICATOR)},
            "faults": {},  # fault -> node it was applied to
        }

    def _require(self) -> dict[str, Any]:
        state = self._state()
        if not state:
            raise PgLabError(f"no PostgreSQL pair in {self.base_dir}: call up() first")
        return state

    def _servers(self, state: dict[str, Any]) -> dict[str, PgServer]:
        root = Path(state["data_root"])
        return {
            n: PgServer(n, root / n, int(state["ports"][n]), f"{state['name']}-{n}") for n in NODES
        }

    def _connect(
        self, state: dict[str, Any], node: str, role: str = "execute", timeout: int = 5
    ) -> psycopg.Connection:
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

    # -- interface -----------------------------------------------------------------------

    def up(self) -> dict[str, Any]:
        """Create what is missing and start both nodes (except ones a recorded fault keeps
        down); return the connection settings, credentials and heartbeat configuration."""
        with self._locked():
            state = self._state() or self._new_state()
            self._save(state)  # ports and passwords are fixed from here on, even if a step fails
            servers = self._servers(state)
            primary, standby = servers["primary"], servers["standby"]
            faults = state.get("faults", {})
            if not primary.exists():
                standby.remove()  # a standby copied from a primary that is gone is useless
                self._create_primary(state, primary)
            if not standby.exists():
                primary.start()
                self._create_standby(state, servers)
            kept_down = {faults.get("primary_down"), faults.get("standby_down")}
            for label, server in servers.items():
                if label not in kept_down:
                    server.start()
            self._reapply(state, servers)
            if not faults:
                self._wait_streaming(state)
            return self._published(state)

    def down(self) -> None:
        """Stop both servers (fast shutdown); data, ports and faults are kept."""
        with self._locked():
            state = self._state()
            if state:
                self._close_heartbeat()
                for server in self._servers(state).values():
                    server.stop("fast")

    def destroy(self) -> None:
        """Stop both servers and remove their data and the pair's state."""
        with self._locked():
            state = self._state()
            self._close_heartbeat()
            if state:
                for server in self._servers(state).values():
                    server.remove()
                shutil.rmtree(state["data_root"], ignore_errors=True)
            self.state_file.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        """Per node: running, port, pid, in_recovery (None when it cannot be asked), frozen;
        the active faults and the node each one was applied to."""
        state = self._state()
        out: dict[str, Any] = {"created": bool(state), "supported_faults": list(FAULTS)}
        if not state:
            return {**out, "nodes": {}, "faults": []}
        nodes = {}
        for label, server in self._servers(state).items():
            entry: dict[str, Any] = {
                "running": server.running(),
                "port": server.port,
                "pid": server.pid(),
                "frozen": server.frozen(),
                "in_recovery": None,
                "data_dir": str(server.data_dir),
            }
            if entry["running"] and not entry["frozen"]:
                try:
                    with self._connect(state, label, timeout=2) as conn:
                        row = conn.execute(
                            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() "
                            "THEN pg_is_wal_replay_paused() END"
                        ).fetchone()
                    entry["in_recovery"], entry["replay_paused"] = row
                except psycopg.Error as exc:
                    entry["error"] = str(exc).strip().splitlines()[-1][:200]
            nodes[label] = entry
        faults = state.get("faults", {})
        return {**out, "nodes": nodes, "faults": sorted(faults), "fault_nodes": faults}

    def inject(self, fault: str) -> None:
        """Apply a fault (see the module docstring); ``heal`` undoes all of them."""
        fault = "pause_replay" if fault == "pause" else fault
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        with self._locked():
            state = self._require()
            servers = self._servers(state)
            if fault == "heal":
                self._close_heartbeat()
                self._heal(state, servers)
                state["faults"] = {}
                self._save(state)
                return
            roles = self._roles(state, servers)
            node = roles["primary"] if fault == "primary_down" else roles["standby"]
            if node is None:
                raise PgLabError(f"cannot inject {fault}: no running {fault.split('_')[0]} node")
            server = servers[node]
            if fault == "lag":
                with self._connect(state, node) as conn:
                    conn.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{LAG_DELAY}'")
                    conn.execute("SELECT pg_reload_conf()")
            elif fault == "pause_replay":
                with self._connect(state, node) as conn:
                    conn.execute("SELECT pg_wal_replay_pause()")
            elif fault == "standby_down":
                server.stop("fast")
            elif fault == "primary_down":
                self._close_heartbeat()
                server.stop("immediate")
            elif fault == "timeout":
                server.freeze()
            state.setdefault("faults", {})[fault] = node
            self._save(state)

    def heartbeat_tick(self) -> None:
        """One heartbeat write on whichever node is primary now (the lab daemon calls this
        every second; it is also the stream of writes that makes lag grow)."""
        for _attempt in range(2):
            conn = self._heartbeat_connection()
            try:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (id, ts) VALUES (1, clock_timestamp()) "
                        "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts"
                    ).format(sql.Identifier(HEARTBEAT_TABLE))
                )
                return
            except psycopg.Error:
                # The node went down or was demoted since the last tick: look again once.
                self._close_heartbeat()
        raise PgLabError("heartbeat write failed on the current primary")

    def write_load(self, rows: int) -> None:
        """Insert ``rows`` rows (~100 bytes each) on the current primary."""
        state = self._require()
        primary = self._roles(state, self._servers(state))["primary"]
        if primary is None:
            raise PgLabError("no primary is accepting writes")
        with self._connect(state, primary) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bc_load (id bigserial PRIMARY KEY, "
                "payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute(
                "INSERT INTO bc_load (payload) SELECT repeat(md5(g::text), 3) "
                "FROM generate_series(1, %s) AS g",
                (int(rows),),
            )

    def dsn(self, node: str, role: str = "execute") -> str:
        """A libpq connection string for a node ("primary" or "standby", the configured
        nodes) as the ``execute`` (bc_admin) or ``monitor`` (bc_monitor) account."""
        if node not in NODES:
            raise ValueError(f"node must be one of {NODES}")
        state = self._require()
        user = ADMIN if role == "execute" else MONITOR
        return (
            f"host={HOST} port={state['ports'][node]} dbname={DBNAME} user={user} "
            f"password={state['passwords'][user]} sslmode=disable connect_timeout=5"
        )

    # -- creation ------------------------------------------------------------------------

    def _published(self, state: dict[str, Any]) -> dict[str, Any]:
        pw = state["passwords"]
        return {
            "connection": {
                "primary_host": HOST,
                "primary_port": int(state["ports"]["primary"]),
                "dr_host": HOST,
                "dr_port": int(state["ports"]["standby"]),
                "dbname": DBNAME,
                "sslmode": "disable",  # the lab servers have no certificate
                "slot_name": state["slot"],
            },
            "credentials": {
                "monitor": {"username": MONITOR, "password": pw[MONITOR]},
                "execute": {"username": ADMIN, "password": pw[ADMIN]},
            },
            "heartbeat": {"table": HEARTBEAT_TABLE, "column": "ts"},
        }

    def _create_primary(self, state: dict[str, Any], primary: PgServer) -> None:
        give_to_server(Path(state["data_root"]))
        primary.initdb(ADMIN, state["passwords"][ADMIN])
        with open(primary.data_dir / "postgresql.conf", "a") as fh:
            fh.write(SERVER_SETTINGS)
        primary.start()
        pw = state["passwords"]
        with self._connect(state, "primary") as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor").format(
                    sql.Identifier(MONITOR), sql.Literal(pw[MONITOR])
                )
            )
            # Belt and braces: the monitoring account could not write anyway.
            conn.execute(
                sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                    sql.Identifier(MONITOR)
                )
            )
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                    sql.Identifier(REPLICATOR), sql.Literal(pw[REPLICATOR])
                )
            )
            table = sql.Identifier(HEARTBEAT_TABLE)
            conn.execute(
                sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, ts timestamptz NOT NULL)").format(
                    table
                )
            )
            conn.execute(sql.SQL("INSERT INTO {} VALUES (1, clock_timestamp())").format(table))
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(MONITOR)))

    def _create_standby(self, state: dict[str, Any], servers: dict[str, PgServer]) -> None:
        """Copy the standby from the primary node (which must be the running primary)."""
        primary, standby = servers["primary"], servers["standby"]
        standby.remove()
        with self._connect(state, "primary") as conn:
            # A slot left from an earlier standby (or copied in by a rewind) would make -C fail.
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

    # -- roles, faults, healing ----------------------------------------------------------

    def _in_recovery(self, state: dict[str, Any], server: PgServer) -> bool | None:
        if not server.running() or server.frozen():
            return None
        try:
            with self._connect(state, server.label, timeout=3) as conn:
                return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        except psycopg.Error:
            return None

    def _roles(self, state: dict[str, Any], servers: dict[str, PgServer]) -> dict[str, str | None]:
        """Which node is primary and which is standby now (None: none can be seen)."""
        seen = {label: self._in_recovery(state, s) for label, s in servers.items()}
        primary = next((n for n in NODES if seen[n] is False), None)
        standby = next((n for n in NODES if seen[n] is True), None)
        return {"primary": primary, "standby": standby}

    def _reapply(self, state: dict[str, Any], servers: dict[str, PgServer]) -> None:
        """After a restart: a pause is lost with the server and a freeze with the process;
        the lag setting lives in postgresql.auto.conf and needs nothing."""
        faults = state.get("faults", {})
        node = faults.get("pause_replay")
        if node and servers[node].running() and not servers[node].frozen():
            with self._connect(state, node) as conn:
                conn.execute("SELECT pg_wal_replay_pause()")
        node = faults.get("timeout")
        if node and servers[node].running() and not servers[node].frozen():
            servers[node].freeze()

    def _heal(self, state: dict[str, Any], servers: dict[str, PgServer]) -> None:
        for server in servers.values():
            server.start()  # also wakes a frozen postmaster
        for label in NODES:
            with self._connect(state, label) as conn:
                if conn.execute("SELECT current_setting('recovery_min_apply_delay')").fetchone()[
                    0
                ] not in ("0", "0ms"):
                    conn.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
                    conn.execute("SELECT pg_reload_conf()")
                if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    conn.execute("SELECT pg_wal_replay_resume()")
        self._restore_roles(state, servers)
        self._wait_streaming(state)

    def _restore_roles(self, state: dict[str, Any], servers: dict[str, PgServer]) -> None:
        primary, standby = servers["primary"], servers["standby"]
        p_rec, s_rec = self._in_recovery(state, primary), self._in_recovery(state, standby)
        if p_rec is False and s_rec is True:
            return
        if p_rec is None:
            raise PgLabError(f"the primary node does not answer; log: {primary.log_tail()}")
        if p_rec:
            if s_rec is False:
                # Switched over: a clean shutdown of the DR primary streams all of its WAL
                # (up to the shutdown checkpoint) to the primary-site node before it exits.
                standby.stop("fast")
            with self._connect(state, "primary") as conn:
                conn.execute("SELECT pg_promote(true, 60)")
        # Both nodes primary (a failover or drill promoted DR), or DR just handed back: the DR
        # node is copied afresh; its own writes as a primary are discarded.
        self._create_standby(state, servers)

    def _wait_streaming(self, state: dict[str, Any]) -> bool:
        """Wait until the current primary streams to the standby and the standby has replayed
        what the primary had written when streaming began (writes may continue meanwhile)."""
        deadline = time.monotonic() + STREAMING_WAIT_SECONDS
        roles = self._roles(state, self._servers(state))
        if roles["primary"] is None or roles["standby"] is None:
            return False
        target = None
        with (
            contextlib.suppress(psycopg.Error),
            self._connect(state, roles["primary"]) as primary,
            self._connect(state, roles["standby"]) as standby,
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

    # -- heartbeat connection --------------------------------------------------------------

    def _heartbeat_connection(self) -> psycopg.Connection:
        if self._hb_conn is not None and not self._hb_conn.closed:
            return self._hb_conn
        state = self._require()
        servers = self._servers(state)
        for label in NODES:  # the configured primary first: the usual case costs one connect
            if self._in_recovery(state, servers[label]) is False:
                self._hb_conn = self._connect(state, label, timeout=2)
                return self._hb_conn
        raise PgLabError("no primary is accepting writes")

    def _close_heartbeat(self) -> None:
        if self._hb_conn is not None:
            with contextlib.suppress(Exception):
                self._hb_conn.close()
            self._hb_conn = None
