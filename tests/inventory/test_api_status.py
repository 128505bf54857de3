"""Monitoring API: lag history, status summary, groups' rolled-up status, collect now."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from connectors import registry
from connectors.contract import Connector, Observation, Replication, Role, SideObservation
from inventory import status_services
from inventory.models import ObservationRollup, ObservationSample, ResourceGroup, ResourceStatus

pytestmark = pytest.mark.django_db


def _status(resource, state="green", visibility="ok", age=1.0, reasons=(), lag=0.5):
    at = timezone.now() - timedelta(seconds=age)
    return ResourceStatus.objects.create(
        resource=resource,
        state=state,
        visibility=visibility,
        reasons=list(reasons),
        observed_at=at,
        evaluated_at=at,
        lag_seconds=lag,
    )


class TestHistory:
    @pytest.fixture
    def resource(self, make_resource):
        resource = make_resource("hist-db")
        now = timezone.now()
        ObservationSample.objects.bulk_create(
            ObservationSample(
                resource=resource,
                at=now - timedelta(minutes=m),
                lag_seconds=float(m),
                lag_bytes=m * 100,
                state="yellow" if m >= 30 else "green",
            )
            for m in range(0, 120, 10)  # 0, 10, ... 110 minutes ago
        )
        ObservationRollup.objects.create(
            resource=resource,
            bucket_seconds=300,
            bucket_start=now - timedelta(hours=60),
            samples=20,
            lag_seconds_min=1,
            lag_seconds_avg=2,
            lag_seconds_max=9,
            lag_bytes_max=512,
            worst_state="red",
            invisible_samples=2,
        )
        return resource

    def test_default_is_last_24_hours_raw(self, client_for, users, resource):
        body = client_for(users["viewer"]).get(f"/api/v1/resources/{resource.pk}/history/").json()
        assert set(body) == {"resource", "since", "until", "count", "truncated", "next", "points"}
        assert body["count"] == 12 and body["truncated"] is False and body["next"] is None
        first, last = body["points"][0], body["points"][-1]
        assert set(first) == {
            "at",
            "lag_seconds",
            "lag_bytes",
            "state",
            "visible",
            "resolution_seconds",
            "samples",
        }
        assert (first["lag_seconds"], first["state"], first["resolution_seconds"]) == (
            110.0,
            "yellow",
            0,
        )
        assert last["lag_seconds"] == 0.0 and last["lag_bytes"] == 0
        ats = [p["at"] for p in body["points"]]
        assert ats == sorted(ats)

    def test_rollups_beyond_the_raw_window(self, client_for, users, resource):
        since = (timezone.now() - timedelta(days=3)).isoformat()
        response = client_for(users["viewer"]).get(
            f"/api/v1/resources/{resource.pk}/history/", {"since": since}
        )
        points = response.json()["points"]
        assert len(points) == 13
        rollup = points[0]
        assert (rollup["resolution_seconds"], rollup["lag_seconds"], rollup["state"]) == (
            300,
            9.0,
            "red",
        )
        assert rollup["visible"] is False and rollup["samples"] == 20

    def test_pages_follow_next(self, client_for, users, resource):
        client = client_for(users["viewer"])
        url, seen = f"/api/v1/resources/{resource.pk}/history/?limit=5", []
        while url:
            body = client.get(url).json()
            seen += [p["at"] for p in body["points"]]
            url = body["next"]
        assert len(seen) == 12 and len(set(seen)) == 12

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"since": "yesterday"}, "since"),
            ({"until": "2026-13-45T00:00:00Z"}, "until"),
            ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "since"),
            ({"since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
            ({"limit": "0"}, "limit"),
            ({"limit": "many"}, "limit"),
            # Found by tests/bcservice/test_api_fuzz.py: "until - 24 h" overflowed datetime
            # near year 1 (HTTP 500).
            ({"until": "0001-01-01T00:00:00Z"}, "until"),
            ({"until": "0001-01-01T05:00:00+05:00"}, "until"),
            ({"since": "0001-01-01T00:00:00Z", "until": "0001-01-01T01:00:00Z"}, "since"),
        ],
    )
    def test_bad_query_is_400_with_field_errors(self, client_for, users, resource, params, field):
        response = client_for(users["viewer"]).get(
            f"/api/v1/resources/{resource.pk}/history/", params
        )
        assert response.status_code == 400
        assert field in response.json()

    def test_history_needs_a_role(self, client_for, users, resource):
        url = f"/api/v1/resources/{resource.pk}/history/"
        assert client_for(None).get(url).status_code in (401, 403)
        assert client_for(users["norole"]).get(url).status_code == 403


def test_summary_counts_state_and_visibility(client_for, users, make_resource):
    _status(make_resource("g1"))
    _status(make_resource("g2"))
    _status(make_resource("y1"), state="yellow", reasons=[{"code": "lag_yellow", "message": "x"}])
    _status(make_resource("r1"), state="red", visibility="lost")
    _status(make_resource("stale", freshness_seconds=60), age=600)  # green, but stale: shown lost
    make_resource("new")  # never observed
    body = client_for(users["viewer"]).get("/api/v1/status/summary/").json()
    assert body["total"] == 6
    assert body["state"] == {"green": 2, "yellow": 2, "red": 2}
    assert body["visibility"] == {"ok": 3, "lost": 3}
    assert "generated_at" in body
    # The list filter agrees with the summary, staleness included.
    client = client_for(users["viewer"])
    for state in ("green", "yellow", "red"):
        listed = client.get(f"/api/v1/resources/?status={state}").json()["results"]
        assert len(listed) == body["state"][state], state
    lost = {r["name"] for r in client.get("/api/v1/resources/?status=lost").json()["results"]}
    assert lost == {"r1", "stale", "new"}
    filtered = client_for(users["viewer"]).get("/api/v1/status/summary/?platform=mongodb").json()
    assert filtered["total"] == 0
    bad = client_for(users["viewer"]).get("/api/v1/status/summary/?tier=9")
    assert bad.status_code == 400 and "tier" in bad.json()


def test_group_status_rolls_up_members(client_for, users, make_resource):
    a, b, c = make_resource("a-db"), make_resource("b-db"), make_resource("c-db")
    _status(a)
    _status(b, state="yellow", reasons=[{"code": "lag_yellow", "message": "lag 31.0 s"}])
    _status(c, state="red", visibility="lost", reasons=[{"code": "dr_unreachable", "message": "x"}])
    group = ResourceGroup.objects.create(name="pay", tier=1)
    for i, r in enumerate([c, a, b]):
        group.memberships.create(resource=r, position=i)
    body = client_for(users["viewer"]).get(f"/api/v1/groups/{group.pk}/").json()
    assert body["status"]["state"] == "red" and body["status"]["visibility"] == "lost"
    assert [(r["member"], r["code"]) for r in body["status"]["reasons"]] == [
        ("c-db", "dr_unreachable"),
        ("b-db", "lag_yellow"),
    ]
    assert [(m["name"], m["position"], m["state"]) for m in body["members"]] == [
        ("c-db", 0, "red"),
        ("a-db", 1, "green"),
        ("b-db", 2, "yellow"),
    ]


def test_admin_creates_group_with_members_and_status(client_for, users, make_resource):
    a, b = make_resource("a-db"), make_resource("b-db")
    response = client_for(users["admin"]).post(
        "/api/v1/groups/", {"name": "g", "tier": 1, "member_ids": [b.pk, a.pk]}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [m["name"] for m in body["members"]] == ["b-db", "a-db"]
    assert body["status"]["state"] == "red"  # never observed members
    assert (
        client_for(users["operator"])
        .post("/api/v1/groups/", {"name": "h", "tier": 1}, format="json")
        .status_code
        == 403
    )


class InstantConnector(Connector):
    platform = "postgres"

    def capabilities(self, target=None):
        return {}

    def observe(self, target):
        return Observation(
            observed_at=timezone.now(),
            primary=SideObservation("primary", "a", role=Role.PRIMARY),
            dr=SideObservation("dr", "b", role=Role.STANDBY),
            replication=Replication.STREAMING,
            lag_seconds=0.2,
            marker_available=True,
        )


class TestCollectNow:
    @pytest.fixture
    def resource(self, make_resource, monkeypatch):
        monkeypatch.setattr(registry, "get_connector", lambda platform: InstantConnector())
        return make_resource("now-db")

    @pytest.mark.parametrize("role", ["operator", "admin"])
    def test_operator_and_admin_collect(self, client_for, users, resource, role):
        response = client_for(users[role]).post(f"/api/v1/resources/{resource.pk}/collect/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["state"], body["visibility"], body["lag_seconds"]) == ("green", "ok", 0.2)
        assert body["age_seconds"] is not None and body["age_seconds"] < 5
        from audit.models import AuditEvent

        event = AuditEvent.objects.get(action="resource.status_changed")
        assert (event.actor_name, event.context) == (users[role].username, "web")

    @pytest.mark.parametrize("role", ["viewer", "approver_it", "auditor", "norole"])
    def test_others_may_not(self, client_for, users, resource, role):
        response = client_for(users[role]).post(f"/api/v1/resources/{resource.pk}/collect/")
        assert response.status_code == 403
        assert not ObservationSample.objects.exists()

    def test_anonymous(self, client_for, resource):
        assert client_for(None).post(f"/api/v1/resources/{resource.pk}/collect/").status_code in (
            401,
            403,
        )

    def test_unknown_is_404(self, client_for, users, resource):
        assert (
            client_for(users["operator"]).post("/api/v1/resources/999/collect/").status_code == 404
        )

    def test_busy_is_409_with_current_status(self, client_for, users, resource):
        status_services.ensure_statuses()
        status_services.claim(
            owner="w1", now=timezone.now(), lease_seconds=60, limit=1, resource_ids=[resource.pk]
        )
        response = client_for(users["operator"]).post(f"/api/v1/resources/{resource.pk}/collect/")
        assert response.status_code == 409
        assert response.json()["status"]["state"] == "red"
