"""Kill-to-red benchmark: a lab primary dies, how long until its resource shows red?

Not part of the test suite.

    DATABASE_URL=postgres://postgres@127.0.0.1:55433/bcservice BC_LAB_DIR=/tmp/bc-lab-me \\
        .venv/bin/python benchmarks/kill_to_red_bench.py [--rounds 5] [--interval 2]

Like ``collection_bench.py`` it works in ``<name>_k2r`` (dropped and created) on the server named
in DATABASE_URL and never touches that database. The target is the lab's real PostgreSQL pair
(``connectors.lab.postgres.PgPair`` in ``$BC_LAB_DIR/postgres``, the pair ``manage.py lab up``
runs: a primary and a streaming standby on 127.0.0.1) with the lab's heartbeat table, ticked once
a second as the lab daemon does. One resource points at it with the real PostgreSQL connector,
``collect_interval_seconds = --interval`` and ``timeout_seconds = --timeout``.

Collection runs as the worker runs it: ``connectors.tasks.Sweeper.run_until`` (the loop inside
``run_sweep``) on a thread of this process. Each round: wait until the resource has been green
for two collections in a row, pick a random moment within one interval, send SIGKILL to the
primary's postmaster, then poll the stored status (what the API and the board read) every 20 ms
until it is red. Reported per round: kill -> red committed, kill -> start of the collection
attempt that saw it (waiting for the schedule), attempt -> committed (observe, rules, write), and
the reason codes. Then the primary is started again (crash recovery) and the pair heals.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def own_database(url: str) -> str:
    """Drop and create ``<name>_k2r`` beside the database in ``url``; return its URL."""
    import psycopg

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    name = f"{parts.path.lstrip('/') or 'bcservice'}_k2r"
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcservice.settings")
    os.environ.setdefault("BC_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    logging.getLogger().setLevel(logging.WARNING)


def make_resource(info: dict, interval: int, timeout: float):
    from inventory.models import Resource, Site

    os.environ["BC_K2R_SECRET"] = json.dumps(info["credentials"])
    east = Site.objects.create(name="east", region="r1", role="primary")
    west = Site.objects.create(name="west", region="r2", role="dr")
    return Resource.objects.create(
        name="orders-pg",
        platform="postgres",
        tier=1,
        environment="production",
        owner="bench",
        primary_site=east,
        dr_site=west,
        connection=info["connection"],
        secret_ref="env:BC_K2R_SECRET",
        collect_interval_seconds=interval,
        timeout_seconds=timeout,
        heartbeat_table=info["heartbeat"]["table"],
        heartbeat_column=info["heartbeat"]["column"],
    )


class Heartbeat(threading.Thread):
    """What the lab daemon does: update the heartbeat row once a second (fails while the
    primary is down, as in the lab)."""

    def __init__(self, pair) -> None:
        super().__init__(daemon=True)
        self.pair, self.stop = pair, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            with contextlib.suppress(Exception):
                self.pair.heartbeat_tick()


def read_status(resource_id: int):
    from inventory.models import ResourceStatus

    return (
        ResourceStatus.objects.filter(resource_id=resource_id)
        .values_list("state", "last_attempt_at", "evaluated_at", "reasons")
        .get()
    )


def wait_green(resource_id: int, limit: float = 60) -> None:
    """Two successive green evaluations (a fresh one after the pair came back)."""
    deadline, seen = time.monotonic() + limit, set()
    while time.monotonic() < deadline:
        state, _, evaluated, _ = read_status(resource_id)
        if state == "green":
            seen.add(evaluated)
            if len(seen) >= 2:
                return
        else:
            seen.clear()
        time.sleep(0.1)
    last = read_status(resource_id)
    raise SystemExit(f"the resource did not turn green within {limit} s: {last}")


def kill_primary(pair) -> int:
    from connectors.lab import pg_setup

    state = pair._state()
    servers = pg_setup.servers(state)
    roles = pg_setup.roles(state, servers)
    server = servers[roles["primary"]]
    pid = server.pid()
    os.kill(pid, signal.SIGKILL)
    return pid


def revive(pair, pid: int) -> None:
    """Wait for the killed postmaster's backends to go, then start it (crash recovery)."""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # orphaned backends notice the postmaster's death and exit
    for attempt in range(10):
        try:
            pair.up()
            return
        except Exception as exc:  # shared memory still attached by a dying backend
            if attempt == 9:
                raise
            print(f"  (restart failed: {type(exc).__name__}: {exc}; retrying)", flush=True)
            time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=2.0, help="the resource's timeout")
    parser.add_argument("--keep-pair", action="store_true", help="do not destroy the lab pair")
    args = parser.parse_args()

    url = own_database(os.environ.get("DATABASE_URL", ""))
    setup_django(url)
    from django.core.management import call_command
    from django.utils import timezone

    from connectors.lab.postgres import PgPair
    from connectors.tasks import Sweeper

    call_command("migrate", verbosity=0)
    lab_dir = Path(os.environ.get("BC_LAB_DIR", "/tmp/bc-lab-bench"))
    lab_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(lab_dir, 0o755)
    pair = PgPair(lab_dir / "postgres")
    info = pair.up()
    resource = make_resource(info, args.interval, args.timeout)
    from inventory.status_services import ensure_statuses

    ensure_statuses()
    heartbeat = Heartbeat(pair)
    heartbeat.start()

    stop = threading.Event()

    def collect() -> None:
        from django.db import connections

        with Sweeper() as sweeper:
            sweeper.run_until(time.monotonic() + 10**9, stop=stop)
        connections.close_all()

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    print(
        f"lab pair up; interval {args.interval} s, timeout {args.timeout} s; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    rows = []
    try:
        for n in range(1, args.rounds + 1):
            wait_green(resource.pk)
            time.sleep(random.uniform(0, args.interval))  # a random phase against the schedule
            killed_wall, killed = timezone.now(), time.monotonic()
            pid = kill_primary(pair)
            while True:
                state, attempt_at, _evaluated_at, reasons = read_status(resource.pk)
                if state == "red":
                    seen = time.monotonic() - killed
                    break
                if time.monotonic() - killed > 60:
                    raise SystemExit("not red 60 s after the kill")
                time.sleep(0.02)
            wait_s = (attempt_at - killed_wall).total_seconds()
            row = {
                "round": n,
                "kill_to_red_s": round(seen, 3),
                "kill_to_attempt_s": round(wait_s, 3),
                "attempt_to_red_s": round(seen - wait_s, 3),
                "reasons": [r["code"] for r in reasons],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            revive(pair, pid)
    finally:
        stop.set()
        collector.join(timeout=30)
        heartbeat.stop.set()
        if not args.keep_pair:
            pair.destroy()
    red = sorted(r["kill_to_red_s"] for r in rows)
    wait = sorted(r["kill_to_attempt_s"] for r in rows)
    work = sorted(r["attempt_to_red_s"] for r in rows)
    print(
        f"kill -> red over {len(red)} rounds: p50 {statistics.median(red):.2f} s, "
        f"max {red[-1]:.2f} s (waiting for the next attempt p50 {statistics.median(wait):.2f} s, "
        f"attempt -> red committed p50 {statistics.median(work):.2f} s, max {work[-1]:.2f} s); "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )


if __name__ == "__main__":
    main()
