"""Inventory API: who may do what, field errors instead of 500s, object scope, query counts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.models import AuditEvent
from inventory.models import Resource, ResourceGroup, ResourceStatus

pytestmark = pytest.mark.django_db

READ_ROUTES = ["/api/v1/sites/", "/api/v1/resources/", "/api/v1/groups/", "/api/v1/status/summary/"]


def resource_body(sites, **changes):
    body = {
        "name": "payments-db",
        "platform": "postgres",
        "tier": 1,
        "environment": "production",
        "owner": "team-pay",
        "primary_site": "east",
        "dr_site": "west",
        "connection": {"primary_host": "10.0.0.1", "dr_host": "10.1.0.1"},
        "secret_ref": "vault:kv/db/payments",
        "rpo_target_seconds": 60,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("route", READ_ROUTES)
def test_anonymous_is_refused(client_for, route):
    assert client_for(None).get(route).status_code in (401, 403)


@pytest.mark.parametrize("route", READ_ROUTES)
def test_authenticated_without_role_is_forbidden(client_for, users, route):
    response = client_for(users["norole"]).get(route)
    assert response.status_code == 403
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("role", ["viewer", "operator", "approver_it", "auditor", "admin"])
@pytest.mark.parametrize("route", READ_ROUTES)
def test_every_role_may_read(client_for, users, make_resource, role, route):
    make_resource()
    assert client_for(users[role]).get(route).status_code == 200


@pytest.mark.parametrize("role", ["viewer", "operator", "approver_business", "auditor"])
def test_only_admin_writes_resources(client_for, users, sites, make_resource, role):
    existing = make_resource()
    client = client_for(users[role])
    assert client.post("/api/v1/resources/", resource_body(sites), format="json").status_code == 403
    patch = client.patch(f"/api/v1/resources/{existing.pk}/", {"owner": "x"}, format="json")
    assert patch.status_code == 403
    assert not Resource.objects.filter(name="payments-db").exists()


def test_admin_creates_and_updates_with_audit(client_for, users, sites):
    client = client_for(users["admin"])
    created = client.post("/api/v1/resources/", resource_body(sites), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"]["state"] == "red" and body["status"]["visibility"] == "lost"
    assert body["status"]["reasons"][0]["code"] == "never_observed"
    rid = body["id"]
    patched = client.patch(f"/api/v1/resources/{rid}/", {"owner": "team-b"}, format="json")
    assert patched.status_code == 200 and patched.json()["owner"] == "team-b"
    events = AuditEvent.objects.filter(object_type="inventory.resource", object_id=str(rid))
    actions = list(events.order_by("seq").values_list("action", flat=True))
    assert actions == ["resource.created", "resource.updated"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dr_site": "east"}, "dr_site"),
        ({"yellow_lag_seconds": 90, "red_lag_seconds": 60}, "yellow_lag_seconds"),
        ({"connection": {"primary_host": "a", "dr_host": "b", "colour": "red"}}, "connection"),
        ({"connection": {"primary_host": "a", "dr_host": "b", "password": "x"}}, "connection"),
        ({"connection": {"dr_host": "b"}}, "connection"),
        ({"connection": "not an object"}, "connection"),
        ({"secret_ref": "has spaces in it"}, "secret_ref"),
        ({"platform": "oracle"}, "platform"),
        ({"tier": 7}, "tier"),
        ({"primary_site": "nowhere"}, "primary_site"),
        ({"name": "bad name!"}, "name"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"collect_interval_seconds": 0}, "collect_interval_seconds"),
        ({"rpo_target_seconds": -5}, "rpo_target_seconds"),
        # Found by fuzzing (tests/bcservice/test_api_fuzz.py): these were HTTP 500s.
        ({"timeout_seconds": 1e308}, "timeout_seconds"),  # collect-now overflowed its lease
        ({"connection": {"primary_host": "a\x00b", "dr_host": "b"}}, "connection"),  # jsonb
        ({"connection": {"primary_host": "a", "dr_host": "b", "k\x00": 1}}, "connection"),
    ],
)
def test_bad_input_gets_field_errors(client_for, users, sites, changes, field):
    response = client_for(users["admin"]).post(
        "/api/v1/resources/", resource_body(sites, **changes), format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_unpaired_surrogate_in_connection_is_a_400_and_nothing_changes(
    client_for, users, make_resource
):
    """JSON may carry "\\ud800"; UTF-8 cannot, so saving it was an HTTP 500 (found by fuzzing)."""
    resource = make_resource()
    raw = '{"connection": {"primary_host": "\\ud800", "dr_host": "b"}}'
    response = client_for(users["admin"]).patch(
        f"/api/v1/resources/{resource.pk}/", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "connection" in response.json()
    resource.refresh_from_db()
    assert resource.connection["primary_host"] == "127.0.0.1"


# Raw JSON literals: a NUL and an unpaired surrogate (json.dumps would not write the latter).
@pytest.mark.parametrize("literal", ['"ea\\u0000st"', '"\\ud800"'])
@pytest.mark.parametrize("field", ["primary_site", "dr_site"])
def test_site_names_no_database_can_compare_are_field_errors(
    client_for, users, sites, literal, field
):
    """Found by fuzzing: a NUL in a site name reached PostgreSQL's lookup (HTTP 500)."""
    body = json.dumps(resource_body(sites, **{field: "SITE"})).replace('"SITE"', literal)
    response = client_for(users["admin"]).post(
        "/api/v1/resources/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not Resource.objects.exists()


def test_a_nul_in_a_form_encoded_site_name_is_a_field_error(client_for, users, sites):
    body = {
        k: v for k, v in resource_body(sites, primary_site="e\x00").items() if k != "connection"
    }
    response = client_for(users["admin"]).post("/api/v1/resources/", body)  # multipart form
    assert response.status_code == 400, response.content
    assert "primary_site" in response.json()


def test_a_huge_timeout_is_refused_and_collect_now_still_answers(client_for, users, make_resource):
    resource = make_resource()
    admin = client_for(users["admin"])
    url = f"/api/v1/resources/{resource.pk}/"
    response = admin.patch(url, {"timeout_seconds": 301}, format="json")
    assert response.status_code == 400 and "timeout_seconds" in response.json()
    assert admin.patch(url, {"timeout_seconds": 300}, format="json").status_code == 200
    # A dead port: the collection fails fast and reports it, whatever the timeout.
    resource.connection = {**resource.connection, "primary_port": 9, "dr_port": 9}
    resource.save(update_fields=["connection"])
    collected = client_for(users["operator"]).post(f"{url}collect/")
    assert collected.status_code == 200, collected.content
    assert collected.json()["state"] == "red"


def test_secret_looking_connection_key_message(client_for, users, sites):
    body = resource_body(sites, connection={"primary_host": "a", "dr_host": "b", "password": "x"})
    response = client_for(users["admin"]).post("/api/v1/resources/", body, format="json")
    [message] = response.json()["connection"]
    assert "password" in message and "secret reference" in message
    assert "x" not in message.split(":", 1)[1].replace("reference", "")


def test_patch_cannot_make_dr_equal_primary(client_for, users, make_resource):
    resource = make_resource()
    response = client_for(users["admin"]).patch(
        f"/api/v1/resources/{resource.pk}/", {"dr_site": "east"}, format="json"
    )
    assert response.status_code == 400 and "dr_site" in response.json()


def test_unknown_resource_is_404(client_for, users):
    assert client_for(users["viewer"]).get("/api/v1/resources/999999/").status_code == 404
    assert client_for(users["viewer"]).get("/api/v1/resources/abc/").status_code == 404


class TestObjectScope:
    """An operator holding view_resource on one resource sees only that one."""

    @pytest.fixture
    def scoped(self, make_user, make_resource):
        mine, other = make_resource("mine-db"), make_resource("other-db")
        user = make_user("operator", username="scoped_op")
        assign_perm("inventory.view_resource", user, mine)
        return user, mine, other

    def test_list_and_detail(self, client_for, scoped):
        user, mine, other = scoped
        client = client_for(user)
        names = [r["name"] for r in client.get("/api/v1/resources/").json()["results"]]
        assert names == ["mine-db"]
        assert client.get(f"/api/v1/resources/{mine.pk}/").status_code == 200
        assert client.get(f"/api/v1/resources/{other.pk}/").status_code == 404
        assert client.get(f"/api/v1/resources/{other.pk}/history/").status_code == 404
        assert client.post(f"/api/v1/resources/{other.pk}/collect/").status_code == 404
        assert client.get("/api/v1/status/summary/").json()["total"] == 1

    def test_group_permission_reaches_members(self, client_for, make_user, make_resource):
        a, b = make_resource("a-db"), make_resource("b-db")
        make_resource("c-db")
        group = ResourceGroup.objects.create(name="pay", tier=1)
        group.memberships.create(resource=a, position=0)
        group.memberships.create(resource=b, position=1)
        user = make_user("viewer", username="group_viewer")
        assign_perm("inventory.view_resourcegroup", user, group)
        client = client_for(user)
        names = sorted(r["name"] for r in client.get("/api/v1/resources/").json()["results"])
        assert names == ["a-db", "b-db"]
        assert [g["name"] for g in client.get("/api/v1/groups/").json()["results"]] == ["pay"]


def test_filters(client_for, users, make_resource):
    make_resource("pg-1")
    make_resource(
        "mongo-1",
        platform="mongodb",
        connection={
            "hosts": ["a:27017", "b:27017"],
            "replica_set": "rs0",
            "primary_member": "a:27017",
            "dr_member": "b:27017",
        },
    )
    client = client_for(users["viewer"])
    got = client.get("/api/v1/resources/?platform=mongodb").json()["results"]
    assert [r["name"] for r in got] == ["mongo-1"]
    # Never observed: shown (and filtered) as red with visibility lost.
    assert client.get("/api/v1/resources/?status=lost").json()["count"] == 2
    assert client.get("/api/v1/resources/?status=green").json()["count"] == 0
    assert client.get("/api/v1/resources/?platform=oracle").status_code == 400
    assert client.get("/api/v1/resources/?tier=x").status_code == 400


def _with_status(resource, **values):
    now = timezone.now()
    defaults = {
        "state": "green",
        "visibility": "ok",
        "reasons": [],
        "observed_at": now,
        "evaluated_at": now,
        "lag_seconds": 0.4,
    }
    defaults.update(values)
    return ResourceStatus.objects.create(resource=resource, **defaults)


def test_resource_list_has_no_n_plus_one(
    client_for, users, make_resource, django_assert_max_num_queries
):
    for i in range(25):
        _with_status(make_resource(f"r{i:02d}"))
    client = client_for(users["operator"])
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/resources/")
    assert response.json()["count"] == 25


def test_group_list_has_no_n_plus_one(
    client_for, users, make_resource, django_assert_max_num_queries
):
    for g in range(6):
        group = ResourceGroup.objects.create(name=f"g{g}", tier=1)
        for i in range(4):
            r = make_resource(f"g{g}-r{i}")
            _with_status(r)
            group.memberships.create(resource=r, position=i)
    client = client_for(users["viewer"])
    with django_assert_max_num_queries(10):
        response = client.get("/api/v1/groups/")
    assert response.json()["count"] == 6


def test_status_shows_stale_values_as_lost(client_for, users, make_resource):
    """Invariant 9: a status whose values are older than freshness is not shown as current."""
    resource = make_resource(freshness_seconds=60)
    old = timezone.now() - timedelta(seconds=600)
    _with_status(resource, observed_at=old, evaluated_at=old, lag_seconds=1.5)
    status = client_for(users["viewer"]).get(f"/api/v1/resources/{resource.pk}/").json()["status"]
    assert status["state"] == "yellow" and status["visibility"] == "lost"
    assert [r["code"] for r in status["reasons"]] == ["stale"]
    assert status["lag_seconds"] == 1.5 and status["age_seconds"] >= 600
