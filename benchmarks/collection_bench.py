"""Collection pipeline benchmark on PostgreSQL (not part of the test suite).

    DATABASE_URL=postgres://postgres@127.0.0.1:55433/bcservice \\
        .venv/bin/python benchmarks/collection_bench.py [--resources 10000] [--cycle 15]

It never touches the database named in DATABASE_URL: it drops and creates ``<name>_bench`` on
the same server, migrates it, and works there. Connectors answer instantly (a fake connector
replaces the registry), so what is measured is the service's own pipeline: lease, observe call
under its guard thread, secret resolution, rules, status update, history sample, audit events.

Phases (each prints one line; see docs/benchmarks.md for the method and recorded numbers):
1. cold cycle: every status changes (never observed -> green), so every resource writes an
   audit event as well;
2. steady cycles: nothing changes (the normal case);
3. per-resource transactions: the same work applied one resource per transaction, the write
   path before batching (on a subset);
4. sustain: resources due spread over a ``--cycle`` window, one Sweeper looping for
   ``--sustain-cycles`` cycles; reports the achieved rate and the spacing of each resource's
   samples (it should stay at the cycle);
5. history: bulk-loads ``--history-hours`` of 15 s samples for every resource (server-side
   ``generate_series``) and times one resource's last-24 h query (selector and HTTP endpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def bench_database(url: str, keep: bool) -> str:
    import psycopg

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL")
    name = parts.path.lstrip("/") or "bcservice"
    bench = f"{name}_bench"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench]).fetchone()
        if exists and not keep:
            conn.execute(f'DROP DATABASE "{bench}" WITH (FORCE)')
        if not exists or not keep:
            conn.execute(f'CREATE DATABASE "{bench}"')
    return urlunsplit(parts._replace(path=f"/{bench}"))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcservice.settings")
    os.environ.setdefault("BC_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    logging.getLogger().setLevel(logging.WARNING)


def install_fake_connector() -> None:
    from django.utils import timezone

    from connectors import registry
    from connectors.contract import (
        Connector,
        Observation,
        Replication,
        Role,
        SideObservation,
    )

    class Instant(Connector):
        platform = "postgres"

        def capabilities(self, target=None):
            return {}

        def observe(self, target):
            target.credentials("monitor")  # resolved per call, as real connectors do
            return Observation(
                observed_at=timezone.now(),
                primary=SideObservation("primary", "db1:5432", role=Role.PRIMARY, healthy=True),
                dr=SideObservation("dr", "db2:5432", role=Role.STANDBY, healthy=True),
                replication=Replication.STREAMING,
                lag_seconds=0.2,
                lag_bytes=128,
                marker_available=True,
                primary_marker="0/3000060",
                dr_marker="0/3000060",
                raw={"pg_stat_replication": [{"state": "streaming", "sync_state": "async"}]},
            )

    instance = Instant()
    registry.get_connector = lambda platform: instance
    os.environ["BC_BENCH_SECRET"] = json.dumps(
        {"monitor": {"user": "bc_monitor", "password": "bench-only"}}
    )


def make_resources(n: int, cycle: int) -> None:
    from inventory.models import Resource, Site

    east = Site.objects.create(name="east", region="r1", role="primary")
    west = Site.objects.create(name="west", region="r2", role="dr")
    Resource.objects.bulk_create(
        (
            Resource(
                name=f"db-{i:05d}",
                platform="postgres",
                tier=1,
                environment="production",
                owner="bench",
                primary_site=east,
                dr_site=west,
                connection={"primary_host": "10.0.0.1", "dr_host": "10.1.0.1"},
                secret_ref="env:BC_BENCH_SECRET",
                collect_interval_seconds=cycle,
            )
            for i in range(n)
        ),
        batch_size=2000,
    )


def db_cpu_seconds() -> float | None:
    """CPU seconds used so far by the PostgreSQL server's processes, when it runs on this host
    (read from /proc); None when that cannot be known."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data_dir = cursor.fetchone()[0]
        postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(stat.parent.name), int(fields[1])
            if postmaster in (pid, ppid):
                total += (int(fields[11]) + int(fields[12])) / tick
            if pid == postmaster:  # backends that already exited, reaped by the postmaster
                total += (int(fields[13]) + int(fields[14])) / tick
        return total
    except Exception:
        return None


def _sweeper_job(mode: str, seconds: float, sweeper_kwargs: dict, results) -> None:
    """One sweeper (in this process or a forked one): a pass, or a loop for ``seconds``."""
    from django.db import connections

    from connectors.tasks import Sweeper

    flush_batch = sweeper_kwargs.pop("flush_batch", None)
    cpu0 = time.process_time()
    with Sweeper(**sweeper_kwargs) as sweeper:
        if flush_batch is not None:
            sweeper.flush_batch, sweeper.flush_after = flush_batch, 0.0
        if mode == "once":
            report = sweeper.run_once()
        else:
            report = sweeper.run_until(time.monotonic() + seconds)
    connections.close_all()
    results.put((report.collected, report.changed, time.process_time() - cpu0))


def run_sweepers(workers: int, mode: str, seconds: float = 0, **sweeper_kwargs) -> tuple:
    """(collected, changed, worker CPU seconds) over ``workers`` sweeper processes.

    Several processes are how the service scales collection out (``BC_SWEEP_SLOTS``): one
    Python process is bound by its interpreter lock, leases split the work between them.
    """
    import multiprocessing
    import queue

    from django.db import connections

    if workers == 1:
        results = queue.Queue()
        _sweeper_job(mode, seconds, dict(sweeper_kwargs), results)
        return results.get()
    connections.close_all()  # never share a connection with a forked child
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_sweeper_job, args=(mode, seconds, dict(sweeper_kwargs), results))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    parts = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    return tuple(sum(values) for values in zip(*parts, strict=True))


def timed_pass(
    label: str, only: list[int] | None = None, workers: int = 1, **sweeper_kwargs
) -> float:
    """One sweep pass (the worker's code path) with every resource (or ``only``) due now."""
    from django.utils import timezone

    from inventory.models import ResourceStatus

    now = timezone.now()
    if only is None:
        ResourceStatus.objects.update(next_collect_at=now)
    else:
        ResourceStatus.objects.update(next_collect_at=now + timezone.timedelta(days=1))
        ResourceStatus.objects.filter(resource_id__in=only).update(next_collect_at=now)
    db0, started = db_cpu_seconds(), time.perf_counter()
    collected, changed, cpu = run_sweepers(workers, "once", **sweeper_kwargs)
    elapsed = time.perf_counter() - started
    n = max(collected, 1)
    db1 = db_cpu_seconds()
    db_ms = f"{(db1 - db0) / n * 1000:.2f}" if db0 is not None and db1 is not None else "?"
    rate = collected / elapsed
    print(
        f"{label} [{workers} sweeper process(es)]: {collected} observations in {elapsed:.2f} s "
        f"= {rate:.0f}/s ({changed} status changes); CPU per observation: worker "
        f"{cpu / n * 1000:.2f} ms, PostgreSQL {db_ms} ms",
        flush=True,
    )
    return rate


def sustain(n: int, cycle: int, cycles: int, concurrency: int | None, workers: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from inventory.models import ObservationSample, ResourceStatus

    start = timezone.now()
    # Spread the due times over one cycle, as a running system settles into.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_resourcestatus SET next_collect_at = %s + "
            "make_interval(secs => (resource_id %% %s) * %s::float / %s)",
            [start, n, cycle, n],
        )
    duration = cycle * cycles
    began = time.perf_counter()
    collected, _, cpu = run_sweepers(workers, "loop", duration, concurrency=concurrency)
    elapsed = time.perf_counter() - began
    # Right when the loops stopped (not after the analysis below, while more fall due):
    # how many were overdue, and by how much at worst.
    ended = timezone.now()
    overdue = ResourceStatus.objects.filter(next_collect_at__lt=ended)
    oldest = overdue.order_by("next_collect_at").values_list("next_collect_at", flat=True)[:1]
    late = f"{(ended - oldest[0]).total_seconds():.1f} s" if oldest else "-"
    overdue = f"{overdue.count()} (the oldest due {late} before)"
    samples = ObservationSample.objects.filter(at__gte=start).order_by("resource_id", "at")
    gaps, last = [], {}
    for rid, at in samples.values_list("resource_id", "at").iterator(chunk_size=20000):
        if rid in last:
            gaps.append((at - last[rid]).total_seconds())
        last[rid] = at
    gaps.sort()
    if gaps:  # one cycle gives one sample per resource, so no spacing to report
        spacing = (
            f"median {statistics.median(gaps):.2f} s, p99 {gaps[int(len(gaps) * 0.99)]:.2f} s, "
            f"max {gaps[-1]:.2f} s"
        )
    else:
        spacing = "n/a (fewer than two samples per resource)"
    print(
        f"sustain {n} resources @ {cycle} s [{workers} sweeper process(es)] for {elapsed:.0f} s: "
        f"{collected} observations = {collected / elapsed:.0f}/s (needed {n / cycle:.0f}/s), "
        f"worker CPU {cpu / max(collected, 1) * 1000:.2f} ms each; sample spacing "
        f"{spacing}; overdue at the end: {overdue}",
        flush=True,
    )


def history(n: int, hours: float, runs: int, load: bool = True) -> None:
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from bcservice.services import user_set_roles
    from inventory.history import history_points
    from inventory.models import Resource

    now = timezone.now()
    if load:
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM inventory_observationsample")
            before = cursor.fetchone()[0]
            # One row per resource every 15 s over the window, written by the server itself, in
            # time order as collection writes them: one resource's day is spread over the table
            # (about one heap page per sample), not stored together. One statement (and
            # commit) per hour keeps each sort small and shows progress.
            end = now - timezone.timedelta(minutes=2)
            chunk_start = now - timezone.timedelta(hours=hours)
            while chunk_start < end:
                chunk_end = min(end, chunk_start + timezone.timedelta(hours=1))
                cursor.execute(
                    """
                    INSERT INTO inventory_observationsample
                        (resource_id, at, lag_seconds, lag_bytes, state, visible)
                    SELECT r.id, t, random() * 5, (random() * 100000)::bigint, 'green', true
                    FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 us',
                                         interval '15 seconds') AS t,
                         inventory_resource r
                    ORDER BY t, r.id
                    ON CONFLICT DO NOTHING
                    """,
                    [chunk_start, chunk_end],
                )
                print(
                    f"  history load: {cursor.rowcount} samples up to {chunk_end:%H:%M} after "
                    f"{time.perf_counter() - began:.0f} s",
                    flush=True,
                )
                chunk_start = chunk_end
            cursor.execute("VACUUM ANALYZE inventory_observationsample")
            cursor.execute("SELECT count(*) FROM inventory_observationsample")
            total = cursor.fetchone()[0]
        elapsed = time.perf_counter() - began
        print(
            f"history load: {total - before} synthetic samples ({total} in table) in "
            f"{elapsed:.0f} s",
            flush=True,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('inventory_observationsample'), "
            "pg_relation_size('inventory_observationsample') FROM inventory_observationsample"
        )
        total, size, heap = cursor.fetchone()
    print(
        f"history table: {total} rows, {size / 2**30:.1f} GiB with indexes "
        f"({heap / 2**30:.1f} GiB heap)",
        flush=True,
    )
    since = now - timezone.timedelta(hours=24)
    # First query of each of `runs` different resources (their pages not yet read by a query),
    # then the same resource again and again (warm).
    firsts, count = [], 0
    ids = Resource.objects.order_by("pk").values_list("pk", flat=True)
    step = max(1, n // runs)
    for pk in list(ids)[step // 2 :: step][:runs]:
        t0 = time.perf_counter()
        points, _ = history_points(pk, since, now)
        firsts.append((time.perf_counter() - t0) * 1000)
        count = len(points)
    resource = Resource.objects.get(name=f"db-{n // 2:05d}")
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        points, _ = history_points(resource.pk, since, now)
        timings.append((time.perf_counter() - t0) * 1000)
    user, _ = user_set_roles(actor=None, username="bench-viewer", roles=["viewer"])
    from django.conf import settings

    if "testserver" not in settings.ALLOWED_HOSTS:  # the test runner adds it; we are not it
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(user)
    http = []
    for _ in range(runs):
        t0 = time.perf_counter()
        response = client.get(f"/api/v1/resources/{resource.pk}/history/")
        http.append((time.perf_counter() - t0) * 1000)
    assert response.status_code == 200, response.status_code
    print(
        f"history query, one resource, last 24 h ({count} points) of {n} resources: "
        f"first query of {len(firsts)} different resources median "
        f"{statistics.median(firsts):.1f} ms (max {max(firsts):.1f}); same resource again "
        f"median {statistics.median(timings):.1f} ms (max {max(timings):.1f}); "
        f"HTTP endpoint incl. JSON median {statistics.median(http):.1f} ms "
        f"(max {max(http):.1f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--cycle", type=int, default=15)
    parser.add_argument("--steady-cycles", type=int, default=3)
    parser.add_argument("--unbatched", type=int, default=2000, help="resources, 0 to skip")
    parser.add_argument("--sustain-cycles", type=int, default=4, help="0 to skip")
    parser.add_argument("--history-hours", type=float, default=24, help="0 to skip")
    parser.add_argument(
        "--history-no-load", action="store_true", help="query the history already loaded"
    )
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument(
        "--workers", type=int, default=1, help="sweeper processes for the steady and sustain runs"
    )
    parser.add_argument(
        "--sustain-workers", type=int, default=None, help="sweeper processes for sustain"
    )
    parser.add_argument("--keep-db", action="store_true", help="reuse <name>_bench")
    parser.add_argument("--skip-cold", action="store_true", help="no cold cycle (with --keep-db)")
    args = parser.parse_args()

    url = bench_database(os.environ.get("DATABASE_URL", ""), args.keep_db)
    setup_django(url)
    from django.core.management import call_command

    from inventory.models import Resource

    call_command("migrate", verbosity=0)
    install_fake_connector()
    if not Resource.objects.exists():
        make_resources(args.resources, args.cycle)
    n = Resource.objects.count()
    print(f"{n} resources, concurrency {args.concurrency or 'default'}, cpus {os.cpu_count()}")

    from inventory.status_services import ensure_statuses

    ensure_statuses()
    if not args.skip_cold:
        timed_pass("cold cycle (every status changes)", concurrency=args.concurrency)
    for workers in sorted({1, args.workers}):
        rates = [
            timed_pass(f"steady cycle {i + 1}", workers=workers, concurrency=args.concurrency)
            for i in range(args.steady_cycles)
        ]
        if rates:
            best = statistics.median(rates)
            print(
                f"=> {workers} sweeper process(es) collect about {best * args.cycle:.0f} "
                f"resources per {args.cycle} s cycle"
            )
    if args.unbatched:
        keep = list(Resource.objects.order_by("pk").values_list("pk", flat=True)[: args.unbatched])
        timed_pass(
            f"per-resource transactions ({len(keep)} resources)",
            only=keep,
            concurrency=args.concurrency,
            flush_batch=1,
        )
    if args.sustain_cycles:
        workers = args.sustain_workers or args.workers
        sustain(n, args.cycle, args.sustain_cycles, args.concurrency, workers)
    if args.history_hours:
        history(n, args.history_hours, runs=20, load=not args.history_no_load)


if __name__ == "__main__":
    main()
