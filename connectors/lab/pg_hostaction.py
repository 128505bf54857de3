"""Host actions for the lab pair: what a production runbook does on a database host with
``pg_ctl``, ``pg_rewind`` and a couple of files, here against ``PgPair``'s data directories.

    python -m connectors.lab.pg_hostaction --pair DIR rejoin --node dr \\
        --source-host 127.0.0.1 --source-port 5433 --slot pg_dr_slot [--rebuild-on-failure]
    python -m connectors.lab.pg_hostaction --pair DIR {start,stop,restart} --node primary

``--node`` is the configured site ("primary" or "dr"). The worker passes the execution account
in ``PGUSER``/``PGPASSWORD`` (used as pg_rewind's source connection); the replication login for
``primary_conninfo`` comes from the pair's own state, as it would from the host's configuration
in production. Each action holds the pair's lock, so a rerun after a worker crash waits for an
orphaned run instead of racing it. Only ``pg_server`` is imported up front (psycopg costs up
to a second to import on a busy host).

Test hook: ``--hold-while FILE`` sleeps after the node is stopped for as long as FILE exists
(writing its pid to ``FILE.pid``), so a test can kill the worker, or this process, at a known
point of a rejoin.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from connectors.lab.pg_server import (
    SITE_NODES,
    PgLabError,
    PgServer,
    node_servers,
    pair_lock,
    read_state,
    run,
    write_as_server,
    write_state,
)

REPLICATOR = "bc_replication"  # as in pg_setup (not imported: it pulls in psycopg)
HOLD_LIMIT_SECONDS = 600
_STANDBY_KEYS = ("primary_conninfo", "primary_slot_name")


def _say(message: str, began: float) -> None:
    _print(f"[{time.monotonic() - began:6.3f} s] {message}")


def _print(text: str, err: bool = False) -> None:
    """Print, and carry on if the reader went away: a worker killed mid-action closes our
    stdout, and a half-done rejoin is worse than one that finishes with nobody watching."""
    stream = sys.stderr if err else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except (BrokenPipeError, OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _conninfo(host: str, port: int, password: str) -> str:
    value = f"host={host} port={port} user={REPLICATOR} password={password} sslmode=prefer"
    return value.replace("\\", "\\\\").replace("'", "\\'")


def make_standby(state: dict[str, Any], server: PgServer, host: str, port: int, slot: str) -> None:
    """standby.signal, and primary_conninfo / primary_slot_name in postgresql.auto.conf (what
    ``pg_basebackup -R`` writes), replacing earlier values."""
    auto = server.data_dir / "postgresql.auto.conf"
    kept = [
        line
        for line in (auto.read_text().splitlines() if auto.exists() else [])
        if not line.strip().startswith(_STANDBY_KEYS)
    ]
    kept.append(f"primary_conninfo = '{_conninfo(host, port, state['passwords'][REPLICATOR])}'")
    if slot:
        kept.append(f"primary_slot_name = '{slot}'")
    write_as_server(auto, "\n".join(kept) + "\n")
    write_as_server(server.data_dir / "standby.signal", "")


def rewind(server: PgServer, host: str, port: int) -> str:
    """pg_rewind from the new primary; ``--no-sync`` because the lab runs with fsync = off."""
    env = {k: os.environ[k] for k in ("PGUSER", "PGPASSWORD", "PGSSLMODE") if k in os.environ}
    done = run(
        [
            "pg_rewind",
            *("-D", str(server.data_dir), "--no-sync"),
            f"--source-server=host={host} port={port} dbname=postgres",
        ],
        env=env,
        timeout=240,
    )
    return " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])


def rebuild(state: dict[str, Any], server: PgServer, host: str, port: int, slot: str) -> None:
    """A fresh copy from the new primary when the rewind failed (what Patroni calls
    remove_data_directory_on_rewind_failure)."""
    server.remove()
    run(
        [
            "pg_basebackup",
            *("-h", host, "-p", str(port), "-U", REPLICATOR),
            *("-D", str(server.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
            *(("-S", slot) if slot else ()),
        ],
        env={"PGPASSWORD": state["passwords"][REPLICATOR], "HOME": state["data_root"]},
    )


def _clear_down_faults(base: Path, label: str) -> None:
    """The node runs again: a recorded 'down' fault on it no longer holds."""
    state = read_state(base)
    faults = state.get("faults", {})
    stale = [f for f, node in faults.items() if node == label and f.endswith("_down")]
    if stale:
        for fault in stale:
            faults.pop(fault)
        write_state(base, state)


def do_rejoin(args: argparse.Namespace, state: dict[str, Any], server: PgServer) -> None:
    began = time.monotonic()
    host, port = args.source_host, int(args.source_port)
    # No shortcut for "already a standby": the worker only calls this when the node does not
    # stream, and every step below is safe to repeat (pg_rewind says "no rewind required").
    server.stop("fast")
    _say(f"{server.label} stopped", began)
    hold = Path(args.hold_while) if args.hold_while else None
    if hold is not None:
        # Lets a test end this process by its id, as a host crash would.
        Path(f"{hold}.pid").write_text(str(os.getpid()))
    while hold is not None and hold.exists() and time.monotonic() - began < HOLD_LIMIT_SECONDS:
        time.sleep(0.05)
    try:
        _say(f"pg_rewind: {rewind(server, host, port)}", began)
    except PgLabError as exc:
        if not args.rebuild_on_failure:
            raise
        _say(f"pg_rewind failed ({exc}); copying afresh with pg_basebackup", began)
        rebuild(state, server, host, port, args.slot)
    make_standby(state, server, host, port, args.slot)
    server.start()
    _say(f"{server.label} started as a standby of {host}:{port} (slot {args.slot or '-'})", began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.lab.pg_hostaction")
    parser.add_argument("--pair", required=True, help="the PgPair base directory")
    parser.add_argument("action", choices=("rejoin", "start", "stop", "restart"))
    parser.add_argument("--node", required=True, choices=sorted(SITE_NODES))
    parser.add_argument("--source-host")
    parser.add_argument("--source-port")
    parser.add_argument("--slot", default="")
    parser.add_argument("--mode", default="fast", choices=("smart", "fast", "immediate"))
    parser.add_argument("--rebuild-on-failure", action="store_true")
    parser.add_argument("--hold-while", help="test hook: pause after stopping while FILE exists")
    args = parser.parse_args(argv)
    base = Path(args.pair)
    label = SITE_NODES[args.node]
    try:
        with pair_lock(base):
            state = read_state(base)
            if not state:
                raise PgLabError(f"no PostgreSQL pair in {base}")
            server = node_servers(state)[label]
            if args.action == "rejoin":
                if not (args.source_host and args.source_port):
                    parser.error("rejoin needs --source-host and --source-port")
                do_rejoin(args, state, server)
            elif args.action == "stop":
                server.stop(args.mode)
                _print(f"{label} stopped ({args.mode})")
            else:
                if args.action == "restart":
                    server.stop(args.mode)
                server.start()
                _print(f"{label} started on port {server.port}")
            if args.action != "stop":
                _clear_down_faults(base, label)
    except PgLabError as exc:
        _print(f"error: {exc}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
