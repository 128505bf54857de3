"""PostgreSQL switchover benchmark on the lab pair (not part of the test suite; no Django).

    .venv/bin/python benchmarks/switchover_bench.py [--rounds 10] [--no-stop] [--no-writer]

Creates a throw-away ``PgPair`` (real primary + streaming standby on 127.0.0.1), then runs
``--rounds`` switchovers back and forth (DR, primary, DR, ...) through the connector's plan
exactly as the runner would call it (every precheck, step and postcheck, in order), and
reports per round and as p50 / max:

- ``unavailable``: the plan's own write-unavailable window, fence -> the new primary committed
  a read-write transaction (``write_unavailable_seconds``);
- ``client gap``: what an application saw: a writer thread commits one row every ~10 ms
  through a libpq multi-host connection string (``target_session_attrs=read-write``),
  reconnecting on failure; the longest gap between two successful commits in the round;
- ``streaming``: the promotion -> the old primary streams from the new one
  (``streaming_after_promote_seconds``), and ``fence->streaming`` for the whole handover;
- ``plan``: every check and step of the plan, prechecks and postchecks included.

``--no-stop`` drops the ``stop`` host action: the fenced old primary then runs on through the
promotion and is rewound afterwards (the issue's order; pg_rewind copies the new primary's WAL).
The pair is destroyed at the end. Method and recorded numbers: docs/benchmarks.md, "Switchover".
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from connectors.contract import ExecutionContext, HeartbeatConfig, Target  # noqa: E402
from connectors.lab.postgres import PgPair  # noqa: E402
from connectors.platforms.postgres import PostgresConnector  # noqa: E402


class Writer(threading.Thread):
    """Commits a row every ~10 ms on whichever node takes writes; records commit times."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        c, creds = info["connection"], info["credentials"]["execute"]
        self.dsn = (
            f"host={c['primary_host']},{c['dr_host']} port={c['primary_port']},{c['dr_port']} "
            f"dbname={c['dbname']} user={creds['username']} password={creds['password']} "
            "sslmode=disable connect_timeout=2 target_session_attrs=read-write"
        )
        self.commits: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS bc_bench_writes (at timestamptz DEFAULT now())"
                    )
                conn.execute("INSERT INTO bc_bench_writes DEFAULT VALUES")
                self.commits.append(time.monotonic())
                time.sleep(0.01)
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.005)
        if conn is not None:
            conn.close()

    def longest_gap(self, since: float, until: float) -> float:
        times = [t for t in self.commits if since <= t <= until]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def run_switchover(target: Target, promote_site: str) -> tuple[dict[str, Any], float]:
    ctx = ExecutionContext(target=target, kind="switchover", promote_site=promote_site)
    ctx.log = lambda message: None
    data: dict[str, Any] = {}
    began = time.monotonic()
    for step in PostgresConnector().plan("switchover", target):
        result = step.run(ctx)
        if not result.ok:
            sys.exit(f"switchover to {promote_site} failed at {step.name}: {result.detail}")
        data.update(result.data)
        if step.name == "rejoin_old_primary":
            data["rejoin_detail"] = result.detail
    return data, time.monotonic() - began


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:18} p50 {statistics.median(values):6.3f} s   max {max(values):6.3f} s   "
        f"min {min(values):6.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-stop", action="store_true", help="rejoin by pg_rewind instead")
    parser.add_argument("--no-writer", action="store_true", help="no background writes")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bc-switchover-bench-", dir="/tmp"))
    os.chmod(base, 0o755)  # the postgres user must reach the data directories
    pair = PgPair(base / "pair", name="bench")
    try:
        info = pair.up()
        connection = dict(info["connection"])
        if args.no_stop:
            connection["host_actions"] = {
                k: v for k, v in connection["host_actions"].items() if k != "stop"
            }
        target = Target(
            name="bench-pg",
            platform="postgres",
            connection=connection,
            credentials=lambda purpose: info["credentials"][purpose],
            heartbeat=HeartbeatConfig(**info["heartbeat"]),
            timeout_seconds=3.0,
        )
        writer = Writer(info)
        if not args.no_writer:
            writer.start()
            time.sleep(1.0)
        rows: dict[str, list[float]] = {
            k: [] for k in ("unavailable", "client gap", "streaming", "fence->streaming", "plan")
        }
        print(f"load average before: {os.getloadavg()[0]:.2f}  (cpus: {os.cpu_count()})")
        for i in range(args.rounds):
            site = "dr" if i % 2 == 0 else "primary"
            began = time.monotonic()
            data, took = run_switchover(target, site)
            time.sleep(0.3)  # let the writer commit after the handover
            gap = writer.longest_gap(began, time.monotonic()) if not args.no_writer else 0.0
            rows["unavailable"].append(data["write_unavailable_seconds"])
            rows["client gap"].append(gap)
            rows["streaming"].append(data["streaming_after_promote_seconds"])
            rows["fence->streaming"].append(data["switchover_seconds"])
            rows["plan"].append(took)
            rewound = "no rewind" if "no rewind required" in data["rejoin_detail"] else "rewound"
            print(
                f"round {i + 1:2} -> {site:7}  unavailable {data['write_unavailable_seconds']:.3f}"
                f"  client gap {gap:.3f}  streaming {data['streaming_after_promote_seconds']:.3f}"
                f"  plan {took:.3f} s  ({rewound})"
            )
        writer.stop.set()
        print(f"load average after: {os.getloadavg()[0]:.2f}; writer errors: {writer.errors}")
        for label, values in rows.items():
            if label == "client gap" and args.no_writer:
                continue
            print(summary(label, values))
    finally:
        pair.destroy()


if __name__ == "__main__":
    main()
