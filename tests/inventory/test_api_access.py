"""Inventory API allow/deny per role, field errors, and guardian object scoping."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from audit.models import AuditEvent

LIST_ROUTES = ["/api/v1/sites/", "/api/v1/resources/", "/api/v1/groups/"]


@pytest.mark.django_db
@pytest.mark.parametrize("route", LIST_ROUTES)
@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (None, 401),
        ("norole", 403),
        ("viewer", 200),
        ("operator", 200),
        ("approver_it", 200),
        ("approver_business", 200),
        ("admin", 200),
        ("auditor", 200),
    ],
)
def test_read_access_by_role(users, client_for, make_resource, route, who, expected):
    make_resource()
    response = client_for(users.get(who)).get(route)
    assert response.status_code == expected


def _site_body(name: str = "tokyo") -> dict:
    return {"name": name, "region": "ap-northeast-1", "role": "dr"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "expected"),
    [("viewer", 403), ("operator", 403), ("approver_it", 403), ("auditor", 403), ("admin", 201)],
)
def test_only_admin_writes(users, client_for, who, expected):
    response = client_for(users[who]).post("/api/v1/sites/", _site_body(), format="json")
    assert response.status_code == expected
    assert AuditEvent.objects.filter(action="site.created").count() == (1 if expected == 201 else 0)


@pytest.mark.django_db
def test_token_authentication(users, client):
    from bcservice.services import user_rotate_token

    token = user_rotate_token(actor=None, user=users["viewer"])
    response = client.get("/api/v1/resources/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    bad = client.get("/api/v1/resources/", HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.status_code == 401


@pytest.mark.django_db
def test_create_resource_and_patch(users, client_for, sites):
    admin = client_for(users["admin"])
    body = {
        "name": "orders",
        "platform": "postgres",
        "tier": 1,
        "environment": "production",
        "owner": "team",
        "primary_site": "east",
        "dr_site": "west",
        "connection": {"primary_host": "10.0.0.1", "dr_host": "10.0.0.2"},
        "secret_ref": "vault:kv/db/orders",
    }
    created = admin.post("/api/v1/resources/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["status"]["visibility"] == "lost" and data["status"]["state"] == "red"
    patched = admin.patch(f"/api/v1/resources/{data['id']}/", {"owner": "team-b"}, format="json")
    assert patched.status_code == 200 and patched.json()["owner"] == "team-b"
    event = AuditEvent.objects.get(action="resource.updated")
    assert (event.before["owner"], event.after["owner"]) == ("team", "team-b")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"dr_site": "east"}, "dr_site"),
        ({"yellow_lag_seconds": 500}, "yellow_lag_seconds"),
        ({"connection": {"primary_host": "a", "dr_host": "b", "nope": 1}}, "connection"),
        ({"connection": {"primary_host": "a", "dr_host": "b", "password": "x"}}, "connection"),
        ({"platform": "oracle"}, "platform"),
        ({"tier": "one"}, "tier"),
        ({"dr_site": "atlantis"}, "dr_site"),
        ({"name": ""}, "name"),
        ({"rpo_target_seconds": -5}, "rpo_target_seconds"),
    ],
)
def test_bad_input_gives_field_errors_and_changes_nothing(
    users, client_for, make_resource, patch, field
):
    resource = make_resource()
    events = AuditEvent.objects.count()
    response = client_for(users["admin"]).patch(
        f"/api/v1/resources/{resource.pk}/", patch, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    resource.refresh_from_db()
    assert resource.dr_site.name == "west" and resource.yellow_lag_seconds == 30
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_malformed_json_is_400(users, client_for):
    response = client_for(users["admin"]).generic(
        "POST", "/api/v1/sites/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_filters(users, client_for, make_resource):
    make_resource("pg1", platform="postgres", tier=1)
    make_resource("pg3", platform="postgres", tier=3, environment="staging")
    viewer = client_for(users["viewer"])
    names = lambda q: {r["name"] for r in viewer.get("/api/v1/resources/", q).json()["results"]}  # noqa: E731
    assert names({"tier": 3}) == {"pg3"}
    assert names({"environment": "production"}) == {"pg1"}
    assert names({"platform": "mongodb"}) == set()
    assert viewer.get("/api/v1/resources/", {"tier": "x"}).status_code == 400


@pytest.mark.django_db
def test_guardian_scope_limits_an_operator(make_user, client_for, make_resource):
    mine, other = make_resource("mine"), make_resource("other")
    operator = make_user("operator")
    assign_perm("inventory.view_resource", operator, mine)
    client = client_for(operator)
    listed = {r["name"] for r in client.get("/api/v1/resources/").json()["results"]}
    assert listed == {"mine"}
    assert client.get(f"/api/v1/resources/{other.pk}/").status_code == 404
    assert client.get(f"/api/v1/resources/{mine.pk}/").status_code == 200


@pytest.mark.django_db
def test_guardian_group_scope_covers_members(make_user, client_for, make_resource):
    from inventory import services
    from inventory.models import ResourceGroup

    a, b, _c = make_resource("a"), make_resource("b"), make_resource("c")
    group = ResourceGroup.objects.create(name="g", tier=1)
    services.group_set_members(actor=None, group=group, resources=[a, b])
    approver = make_user("approver_it")
    assign_perm("inventory.view_resourcegroup", approver, group)
    client = client_for(approver)
    assert {r["name"] for r in client.get("/api/v1/resources/").json()["results"]} == {"a", "b"}
    assert [g["name"] for g in client.get("/api/v1/groups/").json()["results"]] == ["g"]


@pytest.mark.django_db
def test_unscoped_operator_and_auditor_see_everything(users, client_for, make_resource):
    make_resource("a"), make_resource("b")
    for who in ("operator", "auditor"):
        assert client_for(users[who]).get("/api/v1/resources/").json()["count"] == 2


@pytest.mark.django_db
def test_group_api_orders_members(users, client_for, make_resource):
    a, b = make_resource("a"), make_resource("b")
    admin = client_for(users["admin"])
    created = admin.post(
        "/api/v1/groups/", {"name": "g", "tier": 1, "member_ids": [b.pk, a.pk]}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert [m["name"] for m in created.json()["members"]] == ["b", "a"]
    dup = admin.post(
        "/api/v1/groups/", {"name": "h", "tier": 1, "member_ids": [a.pk, a.pk]}, format="json"
    )
    assert dup.status_code == 400 and "member_ids" in dup.json()
