"""The readiness report (reports/readiness/): time per state from stored status history, RPO
breaches, the drill scorecard from real drill executions (scripted connector) and
``drill_overdue`` from the status reasons, scoped to what the user may see."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from connectors.contract import StepResult
from executions import runner, services
from executions.models import Execution
from executions.reports import timeline
from inventory.models import ObservationRollup, ObservationSample, Resource

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/readiness/"
# A fixed hour in the past: the report counts [T0, T0 + 1 h).
T0 = (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
LONG_AGO = T0 - timedelta(days=400)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _sample(resource, minutes, state, lag, visible=True):
    ObservationSample.objects.create(
        resource_id=resource.pk,
        at=_at(minutes),
        lag_seconds=lag if visible else None,
        state=state,
        visible=visible,
    )


def _params(**extra):
    return {"since": T0.isoformat(), "until": _at(60).isoformat(), **extra}


@pytest.fixture
def world(make_resource, script, approved_request, operator):
    """Three resources with known history, a passed drill on ``b`` and a failed one on ``a``."""
    a = make_resource("db-a", tier=1, freshness_seconds=600, rpo_target_seconds=60)
    b = make_resource("db-b", tier=1, freshness_seconds=600, rpo_target_seconds=60)
    c = make_resource("db-c", tier=2, freshness_seconds=600)
    Resource.objects.filter(pk__in=[a.pk, b.pk]).update(created_at=LONG_AGO)
    Resource.objects.filter(pk=c.pk).update(created_at=_at(30))
    # a: green 10 min, yellow 10, red 10 (lag over the RPO target: one breach, ended by the
    # invisible sample), invisible 5, green 10 (600 s freshness), then nothing for 15 min.
    _sample(a, 0, "green", 5)
    _sample(a, 10, "yellow", 40)
    _sample(a, 20, "red", 90)
    _sample(a, 25, "red", 120)
    _sample(a, 30, "red", None, visible=False)
    _sample(a, 35, "green", 1)
    # b: a green sample a minute before the period carries over until it goes stale (9 min in);
    # a 5-minute rollup at 15 min: worst yellow, 2 of 10 samples invisible, max lag 100 s.
    _sample(b, -1, "green", 2)
    ObservationRollup.objects.create(
        resource_id=b.pk,
        bucket_seconds=300,
        bucket_start=_at(15),
        samples=10,
        lag_seconds_min=3,
        lag_seconds_avg=50,
        lag_seconds_max=100,
        worst_state="yellow",
        invisible_samples=2,
    )
    # Drills run for real, then placed inside the period.
    script.results["promote"] = StepResult(
        ok=True, data={"rpo_measured_seconds": 0.42, "rto_measured_seconds": 1.5}
    )
    passed = _drill(approved_request(resource=b, kind="drill"), operator, minutes=40)
    script.results["lag_ok"] = StepResult(ok=False, detail="lag 90 s over 30 s")
    failed = _drill(approved_request(resource=a, kind="drill"), operator, minutes=50)
    return {"a": a, "b": b, "c": c, "passed": passed, "failed": failed}


def _drill(request, operator, minutes):
    execution = services.execution_start(
        actor=operator, request=request, confirm=request.resource.name
    )
    runner.run_execution(execution.pk)
    Execution.objects.filter(pk=execution.pk).update(
        started_at=_at(minutes), finished_at=_at(minutes + 1)
    )
    execution.refresh_from_db()
    return execution


def _by_name(report):
    return {r["resource"]: r for r in report["resources"]}


def test_time_per_state_breaches_and_gaps(world, users, client_for):
    response = client_for(users["auditor"]).get(URL, _params())
    assert response.status_code == 200, response.content
    rows = _by_name(response.json())

    a = rows["db-a"]
    assert a["counted_seconds"] == 3600
    assert a["seconds"] == {"green": 1200, "yellow": 600, "red": 600, "no_visibility": 1200}
    assert a["unobserved_seconds"] == 900
    assert a["percent"]["green"] == pytest.approx(33.33)
    breaches = a["rpo_breaches"]
    assert breaches["count"] == 1 and breaches["seconds"] == 600
    assert breaches["max_lag_seconds"] == 120
    assert breaches["periods"][0]["start"] == _at(20).isoformat()
    assert breaches["periods"][0]["end"] == _at(30).isoformat()

    b = rows["db-b"]
    assert b["seconds"] == {"green": 540, "yellow": 240, "red": 0, "no_visibility": 2820}
    assert b["unobserved_seconds"] == 360 + 2400
    assert b["rpo_breaches"]["count"] == 1 and b["rpo_breaches"]["seconds"] == 300

    # Created half-way through: counted from its creation, all of it unobserved.
    c = rows["db-c"]
    assert c["counted_seconds"] == 1800
    assert c["counted_from"] == _at(30).isoformat()
    assert c["seconds"]["no_visibility"] == 1800 == c["unobserved_seconds"]

    for row in rows.values():
        assert sum(row["seconds"].values()) == pytest.approx(row["counted_seconds"])


def test_tiers_and_drill_scorecard(world, users, client_for):
    report = client_for(users["admin"]).get(URL, _params()).json()
    tiers = {t["tier"]: t for t in report["tiers"]}
    one = tiers[1]
    assert one["resources"] == 2 and one["counted_seconds"] == 7200
    assert one["seconds"]["green"] == 1200 + 540
    assert one["rpo_breaches"] == 2 and one["rpo_breach_seconds"] == 900
    assert (one["drills_run"], one["drills_passed"], one["drills_failed"]) == (2, 1, 1)
    assert tiers[2]["resources"] == 1 and tiers[2]["drills_run"] == 0

    drills = {d["execution"]: d for d in report["drills"]}
    passed, failed = drills[world["passed"].pk], drills[world["failed"].pk]
    assert passed["result"] == "pass" and passed["scope"] == "db-b"
    (measured,) = passed["resources"]
    assert measured["rpo_measured_seconds"] == 0.42 and measured["rto_measured_seconds"] == 1.5
    assert failed["result"] == "fail" and "lag 90 s" in failed["reason"]
    rows = _by_name(report)
    assert rows["db-b"]["drills"] == {"run": 1, "passed": 1, "failed": 0}
    assert rows["db-a"]["drills"] == {"run": 1, "passed": 0, "failed": 1}


def test_drill_overdue_comes_from_the_status_reasons(world, users, client_for):
    report = client_for(users["auditor"]).get(URL, _params()).json()
    # a: created 400 days ago, never passed a drill; b passed one just now; c is new.
    assert [o["resource"] for o in report["drill_overdue"]] == ["db-a"]
    rows = _by_name(report)
    assert "no passed drill" in rows["db-a"]["drill_overdue"]
    assert rows["db-b"]["drill_overdue"] is None and rows["db-c"]["drill_overdue"] is None
    assert {t["tier"]: t["drill_overdue"] for t in report["tiers"]} == {1: 1, 2: 0}


def test_viewer_sees_only_their_resources_and_drills(world, make_user, client_for):
    viewer = make_user("viewer")
    assign_perm("inventory.view_resource", viewer, world["b"])
    report = client_for(viewer).get(URL, _params()).json()
    assert [r["resource"] for r in report["resources"]] == ["db-b"]
    assert [d["execution"] for d in report["drills"]] == [world["passed"].pk]
    assert [t["tier"] for t in report["tiers"]] == [1]
    # An unscoped viewer (no object permissions) sees everything, like the status board.
    everyone = client_for(make_user("viewer")).get(URL, _params()).json()
    assert {r["resource"] for r in everyone["resources"]} == {"db-a", "db-b", "db-c"}


def test_tier_filter(world, users, client_for):
    report = client_for(users["auditor"]).get(URL, _params(tier=2)).json()
    assert [r["resource"] for r in report["resources"]] == ["db-c"]
    assert report["drills"] == [] and report["report"]["tier"] == 2


def test_csv_and_html(world, users, client_for):
    client = client_for(users["auditor"])
    json_rows = _by_name(client.get(URL, _params()).json())
    response = client.get(URL, _params(format="csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_name = {r["name"]: r for r in rows if r["scope"] == "resource"}
    assert set(by_name) == {"db-a", "db-b", "db-c"}
    assert float(by_name["db-a"]["green_seconds"]) == json_rows["db-a"]["seconds"]["green"]
    assert by_name["db-a"]["rpo_breaches"] == "1"
    assert by_name["db-a"]["drill_overdue"].startswith("no passed drill")
    assert [r["name"] for r in rows if r["scope"] == "tier"] == ["tier 1", "tier 2"]

    page = client.get(URL, _params(format="html"))
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "db-a" in html and "drill overdue" in html and "@media print" in html
    assert f"#{world['passed'].pk}" in html


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2025-06-01T00:00:00Z"}, "since"),
        ({"since": "2999-01-01T00:00:00Z", "until": "2999-01-02T00:00:00Z"}, "since"),
        ({"tier": "7"}, "tier"),
        ({"format": "xml"}, "format"),
        # Found by tests/bcservice/test_api_fuzz.py: "until - 30 days" and the read's reach
        # before ``since`` overflowed datetime near year 1 (HTTP 500).
        ({"until": "0001-01-01T00:00:00Z"}, "until"),
        ({"until": "0001-01-31T00:00:00Z"}, "until"),
        ({"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z"}, "since"),
        ({"since": "1969-12-31T00:00:00Z"}, "since"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(users, client_for, params, field):
    response = client_for(users["auditor"]).get(URL, params)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_default_period_is_the_last_30_days(users, client_for, make_resource):
    make_resource("db-x")
    before = timezone.now()
    report = client_for(users["viewer"]).get(URL).json()["report"]
    since = datetime.fromisoformat(report["since"])
    until = datetime.fromisoformat(report["until"])
    assert until - since == timedelta(days=30)
    assert before <= until <= timezone.now()


def test_access(users, client_for):
    assert client_for(None).get(URL).status_code == 401
    assert client_for(users["norole"]).get(URL).status_code == 403
    assert client_for(users["operator"]).post(URL, {}).status_code in (403, 405)


def test_timeline_counts_a_point_before_the_period_and_clips_to_the_end():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        timeline.HistoryPoint(start - timedelta(seconds=30), "red", 1.0, 500.0),
        timeline.HistoryPoint(start + timedelta(seconds=50), "green", 1.0, 1.0),
    ]
    acc = timeline.account(
        points,
        start=start,
        end=start + timedelta(seconds=100),
        freshness_seconds=120,
        rpo_target_seconds=60,
    )
    assert acc.seconds == {"green": 50, "yellow": 0, "red": 50, "no_visibility": 0}
    assert [(b.start, b.seconds, b.max_lag_seconds) for b in acc.breaches] == [(start, 50, 500)]
