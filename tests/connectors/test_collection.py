"""The collection pipeline with a fake connector.

These are unit tests of the pipeline (lease -> observe under a guard -> rules -> status, sample,
audit), not of any platform: ``registry.get_connector`` is replaced by a scripted connector, so no
target is contacted. The platform connectors are tested against the lab elsewhere.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from audit.models import AuditEvent
from connectors import collection, registry, tasks
from connectors.contract import (
    Connector,
    Observation,
    Outcome,
    Replication,
    Role,
    SideObservation,
)
from inventory import history, status_services
from inventory.models import ObservationSample, ResourceStatus

SECRET = "S3cret-Value-9xq"


def healthy(target, lag=0.5, **extra):
    return Observation(
        observed_at=timezone.now(),
        primary=SideObservation("primary", "db1:5432", role=Role.PRIMARY, healthy=True),
        dr=SideObservation("dr", "db2:5432", role=Role.STANDBY, healthy=True),
        replication=Replication.STREAMING,
        lag_seconds=lag,
        lag_bytes=0,
        marker_available=True,
        primary_marker="0/3000060",
        dr_marker="0/3000060",
        **extra,
    )


def dr_down(target):
    obs = healthy(target, lag=None)
    obs.dr = SideObservation("dr", "db2:5432", outcome=Outcome.CONNECTION_ERROR, error="refused")
    obs.replication = Replication.UNKNOWN
    return obs


class FakeConnector(Connector):
    platform = "postgres"

    def __init__(self):
        self.behaviour = {}  # resource name -> fn(target) -> Observation (or raises)
        self.calls = Counter()
        self.lock = threading.Lock()

    def capabilities(self, target=None):
        return {}

    def observe(self, target):
        with self.lock:
            self.calls[target.name] += 1
        target.credentials("monitor")
        return self.behaviour.get(target.name, healthy)(target)


@pytest.fixture
def fake(monkeypatch):
    connector = FakeConnector()

    def get_connector(platform):
        if platform == "postgres":
            return connector
        raise registry.UnknownPlatform(f"no connector for platform {platform!r}")

    monkeypatch.setattr(registry, "get_connector", get_connector)
    monkeypatch.setenv("BC_TEST_PG", json.dumps({"monitor": {"user": "mon", "password": SECRET}}))
    return connector


@pytest.fixture
def resource(make_resource, fake):
    return make_resource("orders-db", secret_ref="env:BC_TEST_PG")


def events(name="resource.status_changed"):
    return list(AuditEvent.objects.filter(action=name).order_by("seq"))


@pytest.mark.django_db
def test_collect_applies_status_appends_sample_and_audits_only_changes(resource, fake):
    status = collection.collect_resource(resource.pk)
    assert (status.state, status.visibility, status.reasons) == ("green", "ok", [])
    assert status.lag_seconds == 0.5 and status.primary_marker == "0/3000060"
    assert status.lease_owner == "" and status.lease_until is None
    assert status.next_collect_at > timezone.now()
    [first] = events()
    assert first.before == {"state": "red", "visibility": "lost", "reasons": ["never_observed"]}
    assert first.after == {"state": "green", "visibility": "ok", "reasons": []}
    assert first.object_name == "orders-db" and first.actor_name == "collector"

    collection.collect_resource(resource.pk)  # same state: no event
    assert len(events()) == 1
    fake.behaviour["orders-db"] = lambda t: healthy(t, lag=45.0)
    status = collection.collect_resource(resource.pk)
    assert (status.state, status.reasons[0]["code"]) == ("yellow", "lag_yellow")
    assert len(events()) == 2
    assert ObservationSample.objects.filter(resource=resource).count() == 3
    assert list(
        ObservationSample.objects.filter(resource=resource).order_by("at").values_list("state")
    ) == [("green",), ("green",), ("yellow",)]


@pytest.mark.django_db
def test_loss_of_visibility_keeps_last_known_values_and_their_age(
    resource, fake, client_for, users
):
    seen = collection.collect_resource(resource.pk)
    seen_at = seen.observed_at
    fake.behaviour["orders-db"] = dr_down
    later = timezone.now() + timedelta(seconds=30)
    status = collection.collect_resource(resource.pk, now=later)
    assert (status.state, status.visibility) == ("red", "lost")
    assert [r["code"] for r in status.reasons] == ["dr_unreachable"]
    assert status.observed_at == seen_at and status.lag_seconds == 0.5  # last known, kept
    assert status.last_attempt_at == later
    sample = ObservationSample.objects.filter(resource=resource).order_by("-at").first()
    assert (sample.visible, sample.lag_seconds, sample.state) == (False, None, "red")

    body = client_for(users["viewer"]).get(f"/api/v1/resources/{resource.pk}/").json()["status"]
    assert body["visibility"] == "lost" and body["lag_seconds"] == 0.5
    assert body["age_seconds"] >= 0 and body["observed_at"] is not None


@pytest.mark.django_db
def test_secrets_reach_no_status_sample_audit_or_log(resource, fake, caplog):
    def leaky(target):
        creds = target.credentials("monitor")
        obs = dr_down(target)
        obs.dr.error = f"auth with {creds['password']} failed"
        obs.raw = {"dsn": f"postgresql://mon:{creds['password']}@db2/x", "note": creds["password"]}
        obs.notes = [creds["password"]]
        return obs

    def crashing(target):
        raise RuntimeError(f"driver said: password={target.credentials('monitor')['password']}")

    caplog.set_level("DEBUG")
    fake.behaviour["orders-db"] = leaky
    collection.collect_resource(resource.pk)
    fake.behaviour["orders-db"] = crashing
    status = collection.collect_resource(resource.pk)
    assert status.reasons[0]["code"] == "connector_error"

    stored = json.dumps(list(ResourceStatus.objects.values()), default=str)
    stored += json.dumps(list(ObservationSample.objects.values()), default=str)
    stored += json.dumps(list(AuditEvent.objects.values()), default=str)
    assert SECRET not in stored
    assert SECRET not in caplog.text
    assert "RuntimeError" in caplog.text  # the crash was logged, sanitized


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("crash", "connector_error"),
        ("unknown_platform", "unknown_platform"),
        ("no_secret", "secret_unavailable"),
        ("not_an_observation", "connector_error"),
    ],
)
def test_failures_become_statuses_not_exceptions(resource, fake, setup, code):
    if setup == "crash":
        fake.behaviour["orders-db"] = lambda t: 1 / 0
    elif setup == "unknown_platform":
        ResourceStatus.objects.all().delete()
        type(resource).objects.filter(pk=resource.pk).update(platform="cassandra")
    elif setup == "no_secret":
        type(resource).objects.filter(pk=resource.pk).update(secret_ref="env:BC_NOT_SET_ANYWHERE")
    else:
        fake.behaviour["orders-db"] = lambda t: {"lag": 1}
    report = tasks.sweep()
    status = report.statuses[resource.pk]
    assert (status.state, status.visibility) == ("red", "lost")
    assert status.reasons[0]["code"] == code


@pytest.mark.django_db
def test_wedged_connector_times_out_without_wedging_the_worker(make_resource, fake):
    release = threading.Event()
    wedged = make_resource("wedged", secret_ref="env:BC_TEST_PG", timeout_seconds=0.2)
    fake.behaviour["wedged"] = lambda t: release.wait(30) and healthy(t)
    try:
        started = time.monotonic()
        status = collection.collect_resource(wedged.pk)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 3  # guard: 0.2 * 2 + 1 = 1.4 s
    assert status.reasons[0]["code"] == "collection_timeout"
    assert "timeout" in status.reasons[0]["message"]
    assert (status.state, status.visibility) == ("red", "lost")


@pytest.mark.django_db
def test_a_wedged_connector_costs_the_sweep_no_slot(make_resource, fake):
    """With one slot, the healthy resource is still collected after the wedged one is given up."""
    release = threading.Event()
    make_resource("wedged", secret_ref="env:BC_TEST_PG", timeout_seconds=0.2)
    make_resource("fine", secret_ref="env:BC_TEST_PG")
    fake.behaviour["wedged"] = lambda t: release.wait(30) and healthy(t)
    try:
        started = time.monotonic()
        report = tasks.sweep(concurrency=1)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    by_name = {s.resource.name: s for s in report.statuses.values()}
    assert by_name["wedged"].reasons[0]["code"] == "collection_timeout"
    assert (by_name["fine"].state, by_name["fine"].visibility) == ("green", "ok")
    assert elapsed < 4


@pytest.mark.django_db
def test_monitoring_asks_only_for_monitor_credentials(resource, fake, monkeypatch):
    """Invariant 6: a connector that asks for execute credentials while observing gets none."""
    asked = []
    real = collection.secrets.resolve
    monkeypatch.setattr(
        collection.secrets,
        "resolve",
        lambda ref, purpose: asked.append(purpose) or real(ref, purpose),
    )
    fake.behaviour["orders-db"] = lambda t: t.credentials("execute")
    status = collection.collect_resource(resource.pk)
    assert status.reasons[0]["code"] == "secret_unavailable"
    assert "only use 'monitor' credentials" in status.reasons[0]["message"]
    assert asked == ["monitor"]  # the one call FakeConnector.observe makes


@pytest.mark.django_db
def test_sweep_collects_due_enabled_resources_and_reschedules(make_resource, fake):
    a = make_resource("a", secret_ref="env:BC_TEST_PG")
    b = make_resource("b", secret_ref="env:BC_TEST_PG", collect_interval_seconds=30)
    make_resource("off", secret_ref="env:BC_TEST_PG", enabled=False)
    start = timezone.now()
    report = tasks.sweep()
    assert set(report.statuses) == {a.pk, b.pk}
    assert report.changed == 2
    rows = {s.resource_id: s for s in ResourceStatus.objects.all()}
    assert rows[b.pk].next_collect_at - start >= timedelta(seconds=29)
    assert all(s.lease_until is None for s in rows.values())
    assert tasks.sweep().collected == 0  # nothing due any more
    assert tasks.sweep(everything=True).collected == 2  # `collect --once`


@pytest.mark.django_db
def test_slow_target_does_not_delay_the_others(make_resource, fake):
    names = [f"fast{i}" for i in range(6)]
    for name in [*names, "slow"]:
        make_resource(name, secret_ref="env:BC_TEST_PG")
    fake.behaviour["slow"] = lambda t: time.sleep(1.5) or healthy(t)
    tasks.sweep(concurrency=4)
    evaluated = dict(
        ResourceStatus.objects.values_list("resource__name", "evaluated_at").order_by()
    )
    assert all(evaluated["slow"] - evaluated[n] > timedelta(seconds=1) for n in names)


@pytest.mark.django_db
def test_a_leased_resource_is_not_collected_twice(resource, fake):
    status_services.ensure_statuses()
    now = timezone.now()
    held = status_services.claim(
        owner="other-worker", now=now, lease_seconds=60, limit=10, resource_ids=[resource.pk]
    )
    assert [r.pk for r in held] == [resource.pk]
    with pytest.raises(collection.CollectionBusy):
        collection.collect_resource(resource.pk)
    assert tasks.sweep().collected == 0
    assert fake.calls["orders-db"] == 0
    # An expired lease can be taken over.
    ResourceStatus.objects.filter(pk=resource.pk).update(lease_until=now - timedelta(seconds=1))
    assert tasks.sweep().collected == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_on_postgres_never_collect_one_resource_twice(make_resource, fake):
    for i in range(40):
        make_resource(f"r{i:02d}", secret_ref="env:BC_TEST_PG")
    fake.behaviour.update(
        {f"r{i:02d}": (lambda t: time.sleep(0.01) or healthy(t)) for i in range(40)}
    )
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def worker():
        try:
            barrier.wait()
            reports.append(tasks.sweep(concurrency=8))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(r.collected for r in reports) == 40
    assert set(fake.calls.values()) == {1} and len(fake.calls) == 40


@pytest.mark.django_db
def test_retention_rolls_up_old_samples_into_buckets(resource):
    now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    old = now - timedelta(hours=50)
    bucket = old.replace(minute=0, second=0)
    samples = [
        ObservationSample(
            resource=resource,
            at=bucket + timedelta(seconds=15 * i),
            lag_seconds=lag,
            lag_bytes=None if lag is None else 10 * i,
            state=state,
            visible=lag is not None,
        )
        for i, (lag, state) in enumerate([(1.0, "green"), (5.0, "yellow"), (None, "red")])
    ]
    recent = ObservationSample(
        resource=resource, at=now - timedelta(hours=1), lag_seconds=2.0, lag_bytes=0, state="green"
    )
    ObservationSample.objects.bulk_create([*samples, recent])
    totals = history.roll_up_history(now=now, raw_hours=48, rollup_days=90)
    assert totals["buckets"] == 1 and totals["samples_deleted"] == 3
    [rollup] = resource.observationrollup_set.all()
    assert rollup.bucket_start == bucket and rollup.bucket_seconds == 300
    assert (rollup.samples, rollup.invisible_samples, rollup.worst_state) == (3, 1, "red")
    assert (rollup.lag_seconds_min, rollup.lag_seconds_avg, rollup.lag_seconds_max) == (1, 3, 5)
    assert rollup.lag_bytes_max == 10
    assert list(ObservationSample.objects.values_list("at", flat=True)) == [recent.at]
    # 95 days on, the recent sample is rolled up too, and both buckets are past their window.
    assert history.roll_up_history(now=now + timedelta(days=95))["rollups_deleted"] == 2
    assert not resource.observationrollup_set.exists() and not ObservationSample.objects.exists()


@pytest.mark.django_db
def test_run_sweep_task_loops_under_the_guard(resource, fake):
    result = tasks.run_sweep(loop_seconds=0.3, chain=False)
    assert result == {"ran": True, "slot": 0, "collected": 1, "changed": 1}

    # Another worker (its own thread and database session) holds the guard: this one stands by.
    held, done = threading.Event(), threading.Event()

    def other_worker():
        try:
            with tasks.sweep_guard() as mine:
                assert mine
                held.set()
                done.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        assert tasks.run_sweep(loop_seconds=0.1, chain=False)["ran"] is False
    finally:
        done.set()
        thread.join(10)


@pytest.mark.django_db
def test_run_sweep_fills_free_slots_and_chains(resource, fake, settings, monkeypatch):
    settings.BC_SWEEP_SLOTS = 2
    enqueued = []
    monkeypatch.setattr(tasks, "_enqueue_sweep", lambda: enqueued.append(1))
    result = tasks.run_sweep(loop_seconds=0.1)
    # Took slot 0, asked for a loop on the free slot 1, and chained its own successor.
    assert (result["ran"], result["slot"], len(enqueued)) == (True, 0, 2)

    held, done = threading.Event(), threading.Event()

    def other_worker():
        try:
            with tasks.sweep_guard(0) as mine:
                assert mine
                held.set()
                done.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        enqueued.clear()
        result = tasks.run_sweep(loop_seconds=0.1)
        assert (result["slot"], len(enqueued)) == (1, 1)  # last slot: only its successor
    finally:
        done.set()
        thread.join(10)


@pytest.mark.django_db
def test_schedules_exist_after_migrate():
    from django_q.models import Schedule

    sweep = Schedule.objects.get(name=tasks.SWEEP_SCHEDULE)
    assert (sweep.func, sweep.schedule_type, sweep.minutes) == (
        "connectors.tasks.run_sweep",
        Schedule.MINUTES,
        1,
    )
    assert Schedule.objects.filter(name=tasks.RETENTION_SCHEDULE).exists()


@pytest.mark.django_db
def test_collect_command(resource, fake, capsys):
    call_command("collect", "--once")
    out = capsys.readouterr().out
    assert "orders-db" in out and "green" in out and "collected 1" in out
    fake.behaviour["orders-db"] = dr_down
    call_command("collect", "--resource", "orders-db", "--once")
    out = capsys.readouterr().out
    assert "lost" in out and "dr_unreachable" in out
    with pytest.raises(CommandError, match="unknown resource"):
        call_command("collect", "--resource", "nope", "--once")
    assert AuditEvent.objects.filter(action="resource.status_changed").last().context == "cli"


@pytest.mark.django_db
def test_collect_command_loop_prints_changes(resource, fake, capsys, monkeypatch):
    original = tasks.Sweeper.run_until
    monkeypatch.setattr(
        tasks.Sweeper,
        "run_until",
        lambda self, deadline, stop=None: original(self, time.monotonic() + 0.5),
    )
    call_command("collect")
    out = capsys.readouterr().out
    assert "status changes below" in out
    assert "orders-db" in out and "green" in out


@pytest.mark.django_db
def test_building_targets_for_leased_resources_reads_nothing_more(
    resource, django_assert_num_queries
):
    """The lease loads every field a Target needs: a deferred one would cost a SELECT per
    resource per observation (it once cut one worker's throughput by two thirds)."""
    status_services.ensure_statuses()
    (held,) = status_services.claim(
        owner="me", now=timezone.now(), lease_seconds=60, limit=10, resource_ids=[resource.pk]
    )
    with django_assert_num_queries(0):
        target = collection.build_target(held, lambda purpose: {})
    assert (target.yellow_lag_seconds, target.red_lag_seconds, target.rpo_target_seconds) == (
        float(resource.yellow_lag_seconds),
        float(resource.red_lag_seconds),
        float(resource.rpo_target_seconds),
    )
