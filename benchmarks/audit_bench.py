"""Audit benchmark on PostgreSQL: append latency, verification speed, JSONL export of 1M events.

Not part of the test suite. Point DATABASE_URL at a throw-away database (its audit tables are
emptied), e.g.

    scripts/pg_cluster.sh start /tmp/bc-bench 55441
    psql -h 127.0.0.1 -p 55441 -U postgres -c 'create database bcservice_bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:55441/bcservice_bench \\
        .venv/bin/python benchmarks/audit_bench.py --events 1000000

Phases (``--only`` picks some): ``append`` (8 writer processes, each ``record()`` in its own
transaction, latency measured around the whole transaction including COMMIT; back to back, or
paced at ``--rate`` appends/s per writer), ``populate``
(COPY of N events with valid hashes and realistic, never-repeating payloads), ``verify``
(``verify_chain`` with one process and with the default worker count; wall time and CPU time),
``export`` (the JSONL export generator the API streams, in a child process so its peak RSS is
its own, for N/10 and N events to show memory stays flat) and ``offline`` (``python -m
audit.verify`` on the exported file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcservice.settings")


def setup() -> None:
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("this benchmark needs PostgreSQL: set DATABASE_URL")


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> int:
    """This process image's peak RSS (VmHWM). ru_maxrss would include the parent's peak on
    Linux, because it survives fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) >> 10
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10


def payload(seq: int) -> tuple[str, str, dict | None, dict | None]:
    """A realistic mix, unique per event: status changes, transitions, configuration saves."""
    kind = seq % 10
    if kind < 7:
        states = ("green", "yellow", "red")
        before = {"state": states[seq % 3], "visibility": "ok", "reasons": ["lag_ok"]}
        after = {
            "state": states[(seq + 1) % 3],
            "visibility": "ok" if seq % 13 else "lost",
            "reasons": ["lag_above_yellow", f"lag_{seq % 977}s"],
        }
        return "resource.status_changed", "inventory.resource", before, after
    if kind < 9:
        reason = f"approved by approver {seq % 31} after review of change CHG{seq:08d}"
        return (
            "request.approved",
            "approvals.executionrequest",
            {"state": "pending"},
            {
                "state": "approved",
                "reason": reason,
            },
        )
    snapshot = {
        "id": seq % 500,
        "name": f"orders-db-{seq % 500}",
        "platform": "postgres",
        "tier": 1 + seq % 3,
        "environment": "production",
        "owner": "team-db",
        "primary_site_id": 1,
        "dr_site_id": 2,
        "connection": {"primary_host": "10.0.0.5", "dr_host": "10.1.0.5", "port": 5432},
        "secret_ref": "vault:kv/db/orders",
        "rpo_target_seconds": 60,
        "yellow_lag_seconds": 30 + seq % 7,
        "red_lag_seconds": 60,
        "freshness_seconds": 120,
        "timeout_seconds": 5.0,
        "enabled": True,
        "updated_at": f"2026-11-23T07:{seq % 60:02d}:00.000000+00:00",
    }
    return "resource.updated", "inventory.resource", dict(snapshot, tier=1), snapshot


# --- append latency ---------------------------------------------------------------------------


def _writer(index: int, count: int, barrier: Any, out: Any, rate: float = 0) -> None:
    setup()
    from django.db import connection, transaction

    from audit import services

    latencies = []
    for i in range(20):  # warm up the connection and the code paths
        with transaction.atomic():
            services.record(action="bench.warmup", object_id=f"{index}-{i}")
    barrier.wait()
    # With ``rate`` (appends/s per writer) each writer paces itself from a random phase, as
    # independent requests would arrive; without, it appends back to back (saturation).
    began = time.perf_counter() + (index / max(1, rate) / 8 if rate else 0)
    for i in range(count):
        action, object_type, before, after = payload(index * count + i)
        if rate:
            time.sleep(max(0.0, began + i / rate - time.perf_counter()))
        start = time.perf_counter()
        with transaction.atomic():
            event = services.record(
                action=action,
                actor="bench",
                object_type=object_type,
                object_id=f"{index}-{i}",
                object_name=f"res-{index}-{i}",
                before=before,
                after=after,
            )
        latencies.append((start, time.perf_counter() - start, event.seq))
    connection.close()
    out.put(latencies)


def bench_append(writers: int, count: int, rate: float = 0, dump: str = "") -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(writers + 1), context.Queue()
    procs = [
        context.Process(target=_writer, args=(i, count, barrier, out, rate)) for i in range(writers)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    timed = [x for _ in procs for x in out.get()]
    wall = time.perf_counter() - start
    for proc in procs:
        proc.join()
    if dump:  # each append's start (s, perf_counter: one clock for all processes), ms, seq
        with open(dump, "w") as handle:
            handle.writelines(
                f"{began:.6f} {took * 1000:.3f} {seq}\n" for began, took, seq in sorted(timed)
            )
    latencies = sorted(took for _, took, _ in timed)
    ms = [x * 1000 for x in latencies]

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 2)

    from audit.selectors import verify_chain

    return {
        "writers": writers,
        "rate_per_writer": rate or "back to back",
        "appends": len(ms),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "appends_per_s": round(len(ms) / wall),
        "chain_ok_after": verify_chain().ok,
    }


# --- populate, verify -------------------------------------------------------------------------


def populate(n: int) -> dict[str, Any]:
    from django.db import connection

    from audit.chain import GENESIS_HASH, canonical_row, format_time

    start_time, t0 = datetime(2026, 1, 1, tzinfo=UTC), time.perf_counter()
    columns = (
        "seq, at, actor_id, actor_name, action, object_type, object_id, object_name, "
        "before, after, request_id, context, prev_hash, hash"
    )
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent, audit_auditcheckpoint")
        prev = GENESIS_HASH
        with cursor.cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            for seq in range(1, n + 1):
                at = format_time(start_time + timedelta(microseconds=seq * 1237))
                action, object_type, before, after = payload(seq)
                row = (
                    seq, at, seq % 40 or None, f"user{seq % 40}", action, object_type,
                    str(seq % 5000), f"res-{seq % 5000}", before, after, f"{seq:032x}",
                    "worker" if seq % 3 else "web", prev,
                )  # fmt: skip
                digest = hashlib.sha256(canonical_row(row)).hexdigest()
                copy.write_row(
                    (*row[:8], *(None if v is None else json.dumps(v) for v in row[8:10]),
                     *row[10:], digest)
                )  # fmt: skip
                prev = digest
        cursor.execute("ANALYZE audit_auditevent")
        cursor.execute("SELECT pg_total_relation_size('audit_auditevent')")
        size = cursor.fetchone()[0]
    return {"events": n, "seconds": round(time.perf_counter() - t0, 1), "table_mb": size >> 20}


def bench_verify(workers: int) -> dict[str, Any]:
    from django.conf import settings

    from audit.selectors import verify_chain

    settings.BC_AUDIT_VERIFY_WORKERS = workers
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    result = verify_chain()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {
        "workers": workers,
        "ok": result.ok,
        "events": result.events_checked,
        "seconds": round(wall, 2),
        "events_per_s": round(result.events_checked / wall),
        "client_cpu_us_per_event": round(cpu / max(1, result.events_checked) * 1e6, 2),
    }


# --- export -----------------------------------------------------------------------------------


def export_child(limit: int, path: str) -> None:
    """Runs in its own process: stream the JSONL export to ``path``, report time and peak RSS."""
    setup()
    from audit import exports, selectors

    baseline = peak_rss_mb()
    t0, written = time.perf_counter(), 0
    export = exports.events_export(selectors.events(to_seq=limit), filters={}, filtered=False)
    with open(path, "wb") as handle:
        for chunk in exports.jsonl_chunks(export):
            handle.write(chunk)
            written += len(chunk)
    print(
        json.dumps(
            {
                "events": export.stats.get("events", 0),
                "seconds": round(time.perf_counter() - t0, 1),
                "mb": written >> 20,
                "rss_before_mb": baseline,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_offline(path: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE, path], cwd=ROOT, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["events_per_s"] = round(result["events"] / result["seconds"])
    return result


_OFFLINE = """
import json, sys
from pathlib import Path
from audit.verify import verify_export
report = verify_export(Path(sys.argv[1]))
status = Path("/proc/self/status").read_text().splitlines()
peak = next(int(x.split()[1]) >> 10 for x in status if x.startswith("VmHWM:"))
print(json.dumps({"events": report.facts["events"], "ok": report.facts["ok"], "peak_rss_mb": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--appends", type=int, default=500, help="per writer")
    parser.add_argument(
        "--rate", type=float, default=0, help="appends/s per writer (default: back to back)"
    )
    parser.add_argument("--only", default="append,populate,verify,export,offline")
    parser.add_argument("--dump", default="", help="write each append's start and latency here")
    parser.add_argument(
        "--export-child", nargs=2, metavar=("LIMIT", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.export_child:
        export_child(int(args.export_child[0]), args.export_child[1])
        return
    setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    phases, results = args.only.split(","), {"cpus": os.cpu_count()}
    results["load_before"] = [round(x, 2) for x in os.getloadavg()]
    if "append" in phases:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE audit_auditevent, audit_auditcheckpoint")
        results["append"] = bench_append(args.writers, args.appends, args.rate, args.dump)
        print("append", results["append"], flush=True)
    if "populate" in phases:
        results["populate"] = populate(args.events)
        print("populate", results["populate"], flush=True)
    if "verify" in phases:
        from audit import conf

        results["verify"] = [bench_verify(1), bench_verify(max(2, conf.verify_workers()))]
        print("verify", results["verify"], flush=True)
    export_path = os.path.join(tempfile.gettempdir(), "bc-audit-bench-export.jsonl")
    if "export" in phases:
        small = run_child("--export-child", str(args.events // 10), export_path)
        full = run_child("--export-child", str(args.events), export_path)
        results["export"] = {"tenth": small, "full": full}
        print("export", results["export"], flush=True)
    if "offline" in phases and os.path.exists(export_path):
        results["offline"] = bench_offline(export_path)
        print("offline", results["offline"], flush=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
