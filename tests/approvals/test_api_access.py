"""Every approvals route, for every role: anonymous, no role, wrong role, right role (as data).

A successful write must leave its audit event; a refused one must leave none.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals import services
from approvals.models import BreakGlassEligibility, BreakGlassGrant, ExecutionRequest
from audit.models import AuditEvent

ROLES = ["viewer", "operator", "approver_it", "approver_business", "admin", "auditor", "norole"]
READERS = {r: 200 for r in ROLES if r != "norole"} | {"norole": 403}


def only(ok: dict[str, int], default: int = 403) -> dict[str, int]:
    return {r: ok.get(r, default) for r in ROLES}


# route name -> (method, path template, body, expected status per role, audit action on success)
ROUTES = {
    "list requests": ("get", "/api/v1/requests/", None, READERS, None),
    "waiting for me": ("get", "/api/v1/requests/?waiting_for_me=1", None, READERS, None),
    "create request": (
        "post",
        "/api/v1/requests/",
        "create",
        only({"operator": 201}),
        "request.created",
    ),
    "request detail": ("get", "/api/v1/requests/{request}/", None, READERS, None),
    "approve": (
        "post",
        "/api/v1/requests/{request}/approve/",
        {"comment": "ok"},
        only({"approver_it": 200, "approver_business": 200}),
        "approval.approved",
    ),
    "deny": (
        "post",
        "/api/v1/requests/{request}/deny/",
        {"comment": "not now"},
        only({"approver_it": 200, "approver_business": 200}),
        "approval.denied",
    ),
    # the request fixture's requester is the "operator" user
    "cancel": (
        "post",
        "/api/v1/requests/{request}/cancel/",
        {},
        only({"operator": 200, "admin": 200}),
        "request.cancelled",
    ),
    "acknowledge flapping": (
        "post",
        "/api/v1/requests/{request}/acknowledge-flapping/",
        {"comment": "safe"},
        only({"admin": 200}),
        "request.flap_acknowledged",
    ),
    "list policies": ("get", "/api/v1/policies/", None, READERS, None),
    "policy detail": ("get", "/api/v1/policies/{policy}/", None, READERS, None),
    "policy preview": (
        "get",
        "/api/v1/policies/preview/?kind=switchover&resource={resource}",
        None,
        READERS,
        None,
    ),
    "list grants": ("get", "/api/v1/breakglass/", None, READERS, None),
    "grant detail": ("get", "/api/v1/breakglass/{grant}/", None, READERS, None),
    # everyone is in the break-glass list here: the role decides
    "open grant": (
        "post",
        "/api/v1/breakglass/",
        "grant",
        only({"operator": 201, "admin": 201}),
        "breakglass.opened",
    ),
    "review grant": (
        "post",
        "/api/v1/breakglass/{ended_grant}/review/",
        {"comment": "checked"},
        only({"approver_it": 200, "approver_business": 200}),
        "breakglass.reviewed",
    ),
    # the grant's grantee is the "admin" user
    "close grant": (
        "post",
        "/api/v1/breakglass/{grant}/close/",
        {},
        only({"admin": 200}),
        "breakglass.closed",
    ),
}
CASES = [(name, role) for name in ROUTES for role in [*ROLES, None]]


@pytest.fixture
def world(users, default_policies, resource, sites):
    for user in users.values():
        BreakGlassEligibility.objects.get_or_create(user=user)
    request = services.request_create(
        actor=users["operator"],
        kind="switchover",
        resource=resource,
        target_site=sites["west"],
        reason="test",
        change_ticket="CHG0012345",
    )
    grant = services.breakglass_open(
        actor=users["admin"], resource=resource, minutes=30, reason="r"
    )
    ended = services.breakglass_open(actor=users["admin"], resource=resource, minutes=1, reason="r")
    BreakGlassGrant.objects.filter(pk=ended.pk).update(
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() - timedelta(minutes=4),
    )
    return {
        "request": request.pk,
        "policy": request.policy_id,
        "resource": resource.pk,
        "grant": grant.pk,
        "ended_grant": ended.pk,
        "bodies": {
            "create": {
                "kind": "switchover",
                "resource": resource.pk,
                "target_site": "west",
                "reason": "move for maintenance",
                "change_ticket": "CHG0099999",
            },
            "grant": {"reason": "outage", "scope": {"resource": resource.pk}, "minutes": 10},
        },
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "role"), CASES, ids=[f"{r}-{w}" for r, w in CASES])
def test_route_access(world, users, client_for, route, role):
    method, template, body, expected, action = ROUTES[route]
    path = template.format(**world)
    if isinstance(body, str):
        body = world["bodies"][body]
    before = AuditEvent.objects.filter(action=action).count() if action else 0
    client = client_for(users[role] if role else None)
    response = (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )
    if role is None:
        assert response.status_code == 401
        return
    assert response.status_code == expected[role], response.content
    if action:
        after = AuditEvent.objects.filter(action=action).count()
        assert after == before + (1 if response.status_code < 300 else 0)


@pytest.fixture
def scoped(make_user, make_resource, default_policies, sites, users):
    """An approver limited (guardian) to one resource, and a request on another one."""
    mine = make_resource("mine-db")
    theirs = make_resource("theirs-db")
    approver = make_user("approver_it", "operator", username="scoped")
    assign_perm("inventory.view_resource", approver, mine)
    request = services.request_create(
        actor=users["operator"],
        kind="switchover",
        resource=theirs,
        target_site=sites["west"],
        reason="x",
        change_ticket="CHG0012345",
    )
    return approver, request, theirs


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "approve/", {"comment": "ok"}),
        ("post", "deny/", {"comment": "no"}),
        ("post", "cancel/", {}),
    ],
)
def test_out_of_scope_is_404(scoped, client_for, method, suffix, body):
    approver, request, _ = scoped
    client = client_for(approver)
    url = f"/api/v1/requests/{request.pk}/{suffix}"
    response = client.get(url) if method == "get" else client.post(url, body, format="json")
    assert response.status_code == 404
    assert client.get("/api/v1/requests/").json()["count"] == 0
    request.refresh_from_db()
    assert request.state == "pending_approval"


@pytest.mark.django_db
def test_out_of_scope_ids_in_bodies_look_unknown(scoped, client_for, sites):
    approver, _, theirs = scoped
    client = client_for(approver)
    body = {"kind": "switchover", "resource": theirs.pk, "target_site": "west", "reason": "x"}
    response = client.post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400 and response.json() == {"resource": ["Unknown resource."]}
    preview = client.get(f"/api/v1/policies/preview/?kind=drill&resource={theirs.pk}")
    assert preview.status_code == 400


@pytest.mark.django_db
def test_requester_cannot_approve_through_any_path(make_user, default_policies, resource, sites):
    from rest_framework.test import APIClient

    boss = make_user("operator", "approver_it", "approver_business", "admin", username="boss")
    request = services.request_create(
        actor=boss,
        kind="switchover",
        resource=resource,
        target_site=sites["west"],
        reason="x",
        change_ticket="CHG0012345",
    )
    url = f"/api/v1/requests/{request.pk}/approve/"

    def refused(client: APIClient) -> None:
        response = client.post(url, {"comment": "mine"}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "requester"

    session = APIClient()
    session.force_login(boss)
    refused(session)
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {named_token(boss)}")
    refused(token)
    # a fresh token is still the same person
    rotated = APIClient()
    rotated.credentials(HTTP_AUTHORIZATION=f"Token {services_rotate(boss)}")
    refused(rotated)
    detail = session.get(f"/api/v1/requests/{request.pk}/").json()
    assert detail["can_approve"] is False and "requester" in detail["why_not"]
    assert not request.approvals.exists()


def named_token(user) -> str:
    """A second, separately named API token of the same person (a service-account style key)."""
    from bcservice.accounts.services import api_token_create

    return api_token_create(actor=None, user=user, name="second")[1]


def services_rotate(user) -> str:
    from bcservice.services import user_rotate_token

    return user_rotate_token(actor=None, user=user)


@pytest.mark.django_db
def test_conflicts_are_409_with_the_state(world, users, client_for):
    client = client_for(users["operator"])
    url = f"/api/v1/requests/{world['request']}/"
    assert client.post(url + "cancel/", {}, format="json").status_code == 200
    again = client.post(url + "cancel/", {}, format="json")
    assert again.status_code == 409 and again.json()["state"] == "cancelled"
    vote = client_for(users["approver_it"]).post(url + "approve/", {}, format="json")
    assert vote.status_code == 409
    assert vote.json() == {
        "detail": "The request is cancelled; votes are closed.",
        "state": "cancelled",
        "code": "state",
    }


@pytest.mark.django_db
def test_list_query_count_is_constant(world, users, client_for, django_assert_max_num_queries):
    request = ExecutionRequest.objects.get(pk=world["request"])
    services.request_approve(request, actor=users["approver_it"])
    client = client_for(users["auditor"])
    with django_assert_max_num_queries(12) as few:
        client.get("/api/v1/requests/")
    for _ in range(5):
        services.request_create(
            actor=users["operator"],
            kind="drill",
            resource=request.resource,
            target_site=request.target_site,
            reason="x",
            change_ticket="CHG0012345",
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/api/v1/requests/").json()["count"] == 6
