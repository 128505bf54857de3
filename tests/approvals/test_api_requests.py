"""The request API as the React app uses it: create, detail, votes, the queue, the preview."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services
from inventory.models import ResourceStatus

URL = "/api/v1/requests/"


def _body(resource, **kw):
    return {
        "kind": "switchover",
        "resource": resource.pk,
        "target_site": "west",
        "reason": "maintenance on east",
        "change_ticket": "CHG0012345",
        **kw,
    }


@pytest.mark.django_db
def test_create_then_two_approvals_through_the_api(people, resource, client_for, default_policies):
    ResourceStatus.objects.create(
        resource=resource,
        state="green",
        visibility="ok",
        lag_seconds=1,
        observed_at=timezone.now(),
    )
    created = client_for(people["op"]).post(URL, _body(resource), format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["state"] == "pending_approval" and data["requested_by"] == "op"
    assert data["approvals_required"]["count"] == 2
    assert data["approvals_required"]["roles"] == ["approver_business", "approver_it"]
    assert data["policy"]["name"] == "Tier 1 (default)"
    assert data["policy"]["approval_validity_seconds"] == 4 * 3600
    assert data["can_approve"] is False and "approver" in data["why_not"]
    url = f"{URL}{data['id']}/"

    it_view = client_for(people["it"]).get(url).json()
    assert it_view["can_approve"] is True and it_view["why_not"] == ""
    first = client_for(people["it"]).post(url + "approve/", {"comment": "lag fine"}, format="json")
    assert first.status_code == 200
    after_first = first.json()
    assert after_first["state"] == "pending_approval"
    assert after_first["approvals_required"]["missing_roles"] == ["approver_business"]
    (row,) = after_first["approvals"]
    assert row["approver"] == "it1" and row["role_counted"] == "approver_it"
    assert row["comment"] == "lag fine" and row["readiness"][0]["state"] == "green"
    it2_view = client_for(people["it2"]).get(url).json()
    assert it2_view["can_approve"] is False and "approver_business" in it2_view["why_not"]
    assert it2_view["can_deny"] is True

    second = client_for(people["biz"]).post(url + "approve/", {}, format="json").json()
    assert second["state"] == "approved" and second["approvals_required"]["satisfied"]
    assert {a["role_counted"] for a in second["approvals"]} == {"approver_it", "approver_business"}
    op_view = client_for(people["op"]).get(url).json()
    assert op_view["can_start"] is True and op_view["can_cancel"] is True


@pytest.mark.django_db
def test_waiting_for_me(people, make_request, client_for, resource):
    mine = make_request(actor=people["op"])
    voted = make_request()
    services.request_approve(voted, actor=people["it"])
    needs_business = make_request()
    services.request_approve(needs_business, actor=people["it2"])
    done = make_request()
    services.request_cancel(done, actor=people["op"])

    def queue(user):
        response = client_for(user).get(URL, {"waiting_for_me": "1"})
        assert response.status_code == 200
        return {r["id"] for r in response.json()["results"]}

    # it1 voted on "voted"; "needs_business" has IT covered already
    assert queue(people["it"]) == {mine.pk}
    assert queue(people["biz"]) == {mine.pk, voted.pk, needs_business.pk}
    assert queue(people["both"]) == {mine.pk, voted.pk, needs_business.pk}
    assert queue(people["viewer"]) == set()
    # the requester never waits for themself, whatever roles they hold
    from approvals.selectors import waiting_for

    boss = people["both"]
    own = make_request(actor=_promote(boss))
    assert own.pk not in {r.pk for r in waiting_for(boss)}


def _promote(user):
    from bcservice.services import user_set_roles

    user_set_roles(
        actor=None, username=user.username, roles=["operator", "approver_it", "approver_business"]
    )
    user.__dict__.pop("_bc_roles", None)  # roles are cached per user object
    return user


@pytest.mark.django_db
def test_filters(people, make_request, client_for):
    a = make_request()
    b = make_request(kind="drill")
    services.request_cancel(b, actor=people["op"])
    client = client_for(people["viewer"])
    ids = lambda **q: {r["id"] for r in client.get(URL, q).json()["results"]}  # noqa: E731
    assert ids(state="pending_approval") == {a.pk}
    assert ids(kind="drill") == {b.pk}
    assert ids() == {a.pk, b.pk}
    assert client.get(URL, {"state": "bogus"}).status_code == 400


@pytest.mark.django_db
def test_policy_preview(people, resource, client_for, default_policies, make_resource):
    client = client_for(people["op"])
    shown = client.get("/api/v1/policies/preview/", {"kind": "failover", "resource": resource.pk})
    assert shown.status_code == 200
    body = shown.json()
    assert body["resolved_for"] == {"tier": 1, "environment": "production", "kind": "failover"}
    assert body["policy"]["min_approvers"] == 2
    staging = make_resource("stg", environment="staging", tier=2)
    light = client.get("/api/v1/policies/preview/", {"kind": "drill", "resource": staging.pk})
    assert light.json()["policy"]["name"] == "Tier 2 staging (default)"


@pytest.mark.django_db
def test_policies_list(people, client_for, default_policies):
    rows = client_for(people["viewer"]).get("/api/v1/policies/").json()["results"]
    assert len(rows) == 9 and {"min_approvers", "required_roles"} <= set(rows[0])


@pytest.mark.django_db
def test_breakglass_through_the_api(eligible, people, resource, client_for, make_request):
    client = client_for(eligible)
    body = {"reason": "DC1 down", "scope": {"resource": resource.pk}, "minutes": 30}
    opened = client.post("/api/v1/breakglass/", body, format="json")
    assert opened.status_code == 201, opened.json()
    grant = opened.json()
    assert grant["active"] and grant["grantee"] == "op" and grant["needs_review"] is False
    request = make_request()
    detail = client.get(f"{URL}{request.pk}/").json()
    assert detail["can_start"] is True
    other = client_for(people["op2"]).get(f"{URL}{request.pk}/").json()
    assert other["can_start"] is False and other["start_blocker"] == "not_approved"
    closed = client.post(f"/api/v1/breakglass/{grant['id']}/close/", {}, format="json")
    assert closed.status_code == 200 and closed.json()["active"] is False


@pytest.mark.django_db
def test_readiness_at_a_vote_is_the_status_as_shown_now(people, resource, make_request):
    """A status last observed long ago is stale when the approver votes: the readiness stored
    with the vote says so, as the board does, not the green of the old observation."""
    ResourceStatus.objects.create(
        resource=resource,
        state="green",
        visibility="ok",
        lag_seconds=1,
        observed_at=timezone.now() - timedelta(hours=2),
    )
    request = make_request()
    vote = services.request_approve(request, actor=people["it"], comment="ok")
    (row,) = vote.readiness
    assert row["visibility"] == "lost" and row["state"] != "green"
    assert "stale" in row["reasons"]
