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
import json
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from connectors.lab import pg_setup as setup
from connectors.lab.pg_server import (
    STATE_FILE,
    PgLabError,
    PgServer,
    link_sites,
    pair_lock,
    read_state,
    server_can_reach,
    write_state,
)
from connectors.lab.pg_setup import ADMIN, DBNAME, HEARTBEAT_TABLE, HOST, MONITOR, NODES, REPLICATOR

__all__ = ["FAULTS", "PgLabError", "PgPair"]

FAULTS = ("lag", "pause_replay", "pause", "standby_down", "primary_down", "timeout", "heal")
LAG_DELAY = "1h"
ORPHAN_PREFIX, OWNER_FILE = "bc-pgpair-", "owner.json"
SHARED_TMP = Path("/tmp")  # noqa: S108 - not $TMPDIR: it must be traversable by postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _sweep_orphans() -> None:
    """Remove data roots in /tmp whose pair directory is gone (a test's temp dir, cleaned up
    after ``down()`` kept the data) and whose servers are not running."""
    for root in SHARED_TMP.glob(ORPHAN_PREFIX + "*"):
        try:
            owner = Path(json.loads((root / OWNER_FILE).read_text())["base_dir"])
        except (OSError, ValueError, KeyError):
            continue  # not made by this module, or being created right now
        nodes = [PgServer(n, root / n, 0, "") for n in NODES]
        if not owner.exists() and not any(node.running() for node in nodes):
            shutil.rmtree(root, ignore_errors=True)


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
        return read_state(self.base_dir)

    def _save(self, state: dict[str, Any]) -> None:
        write_state(self.base_dir, state)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # The same lock the host actions (connectors.lab.pg_hostaction) take.
        with pair_lock(self.base_dir):
            yield

    def _new_state(self) -> dict[str, Any]:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if server_can_reach(self.base_dir):
            data_root = self.base_dir / "data"
        else:
            # e.g. pytest's tmp dirs or /root: the postgres user cannot traverse the parents.
            _sweep_orphans()
            data_root = Path(
                tempfile.mkdtemp(prefix=ORPHAN_PREFIX + f"{self.name}-", dir=SHARED_TMP)
            )
            (data_root / OWNER_FILE).write_text(json.dumps({"base_dir": str(self.base_dir)}))
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

    # -- interface -----------------------------------------------------------------------

    def up(self) -> dict[str, Any]:
        """Create what is missing and start both nodes (except ones a recorded fault keeps
        down); return the connection settings, credentials and heartbeat configuration."""
        with self._locked():
            state = self._state() or self._new_state()
            self._save(state)  # ports and passwords are fixed from here on, even if a step fails
            servers = setup.servers(state)
            primary, standby = servers["primary"], servers["standby"]
            faults = state.get("faults", {})
            if not primary.exists():
                standby.remove()  # a standby copied from a primary that is gone is useless
                setup.create_primary(state, primary)
            if not standby.exists():
                primary.start()
                setup.create_standby(state, servers)
            kept_down = {faults.get("primary_down"), faults.get("standby_down")}
            for label, server in servers.items():
                if label not in kept_down:
                    server.start()
            self._reapply(state, servers)
            link_sites(Path(state["data_root"]))
            if not faults:
                setup.wait_streaming(state)
            return self._published(state)

    def down(self) -> None:
        """Stop both servers (fast shutdown); data, ports and faults are kept."""
        with self._locked():
            state = self._state()
            if state:
                self._close_heartbeat()
                for server in setup.servers(state).values():
                    server.stop("fast")

    def destroy(self) -> None:
        """Stop both servers and remove their data and the pair's state."""
        with self._locked():
            state = self._state()
            self._close_heartbeat()
            if state:
                for server in setup.servers(state).values():
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
        for label, server in setup.servers(state).items():
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
                    with setup.connect(state, label, timeout=2) as conn:
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
            servers = setup.servers(state)
            if fault == "heal":
                self._close_heartbeat()
                self._heal(state, servers)
                state["faults"] = {}
                self._save(state)
                return
            roles = setup.roles(state, servers)
            node = roles["primary"] if fault == "primary_down" else roles["standby"]
            if node is None:
                raise PgLabError(f"cannot inject {fault}: no running {fault.split('_')[0]} node")
            server = servers[node]
            if fault == "lag":
                with setup.connect(state, node) as conn:
                    conn.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{LAG_DELAY}'")
                    conn.execute("SELECT pg_reload_conf()")
            elif fault == "pause_replay":
                with setup.connect(state, node) as conn:
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
        primary = setup.roles(state, setup.servers(state))["primary"]
        if primary is None:
            raise PgLabError("no primary is accepting writes")
        with setup.connect(state, primary) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bc_load (id bigserial PRIMARY KEY, "
                "payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute(
                "INSERT INTO bc_load (payload) SELECT repeat(md5(g::text), 3) "
                "FROM generate_series(1, %s) AS g",
                (int(rows),),
            )

    def servers(self) -> dict[str, PgServer]:
        """The two nodes ("primary", "standby": the configured ones), for tests and host
        actions that work on data directories (pg_rewind, standby.signal)."""
        return setup.servers(self._require())

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
                "host_actions": self.host_actions(state),
            },
            "credentials": {
                "monitor": {"username": MONITOR, "password": pw[MONITOR]},
                "execute": {"username": ADMIN, "password": pw[ADMIN]},
            },
            "heartbeat": {"table": HEARTBEAT_TABLE, "column": "ts"},
        }

    def host_actions(self, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Command templates for the worker's host actions on this pair (see
        ``pg_setup.host_action_templates``)."""
        return setup.host_action_templates(state or self._require(), self.base_dir)

    # -- faults, healing -----------------------------------------------------------------

    def _reapply(self, state: dict[str, Any], servers: dict[str, PgServer]) -> None:
        """After a restart: a pause is lost with the server and a freeze with the process;
        the lag setting lives in postgresql.auto.conf and needs nothing."""
        faults = state.get("faults", {})
        node = faults.get("pause_replay")
        if node and servers[node].running() and not servers[node].frozen():
            with setup.connect(state, node) as conn:
                conn.execute("SELECT pg_wal_replay_pause()")
        node = faults.get("timeout")
        if node and servers[node].running() and not servers[node].frozen():
            servers[node].freeze()

    def _heal(self, state: dict[str, Any], servers: dict[str, PgServer]) -> None:
        for label, server in servers.items():
            try:
                server.start()  # also wakes a frozen postmaster
            except PgLabError:
                if label == "primary":
                    raise
                # A standby that cannot start (e.g. on a diverged timeline) is rebuilt by
                # restore_roles below.
        for label, server in servers.items():
            if not server.running():
                continue
            with setup.connect(state, label) as conn:
                delay = conn.execute("SELECT current_setting('recovery_min_apply_delay')")
                if (delay.fetchone() or ("0",))[0] not in ("0", "0ms"):
                    conn.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
                    conn.execute("SELECT pg_reload_conf()")
                if (conn.execute("SELECT pg_is_in_recovery()").fetchone() or (False,))[0]:
                    conn.execute("SELECT pg_wal_replay_resume()")
                # A fence left by a switchover that stopped half way (executions).
                if (conn.execute("SHOW default_transaction_read_only").fetchone() or ("",))[
                    0
                ] == "on":
                    conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                    conn.execute("SELECT pg_reload_conf()")
        setup.restore_roles(state, servers)
        setup.wait_streaming(state)

    # -- heartbeat connection --------------------------------------------------------------

    def _heartbeat_connection(self) -> psycopg.Connection:
        if self._hb_conn is not None and not self._hb_conn.closed:
            return self._hb_conn
        state = self._require()
        servers = setup.servers(state)
        for label in NODES:  # the configured primary first: the usual case costs one connect
            if setup.in_recovery(state, servers[label]) is False:
                self._hb_conn = setup.connect(state, label, timeout=2)
                return self._hb_conn
        raise PgLabError("no primary is accepting writes")

    def _close_heartbeat(self) -> None:
        if self._hb_conn is not None:
            with contextlib.suppress(Exception):
                self._hb_conn.close()
            self._hb_conn = None
