"""Hostile input: wrong types, missing fields, both scopes, unknown ids, huge numbers, bad
tickets. Always 400 with field errors (never 500), and nothing written."""

from __future__ import annotations

import pytest

from approvals.models import BreakGlassGrant, ExecutionRequest
from audit.models import AuditEvent

URL = "/api/v1/requests/"
HUGE = 10**30


def _good(resource) -> dict:
    return {
        "kind": "switchover",
        "resource": resource.pk,
        "target_site": "west",
        "reason": "maintenance",
        "change_ticket": "CHG0012345",
    }


REQUEST_CASES = [
    ({"kind": "reboot"}, "kind"),
    ({"kind": ["failover"]}, "kind"),
    ({"kind": None}, "kind"),
    ({"resource": "orders-db"}, "resource"),
    ({"resource": -1}, "resource"),
    ({"resource": HUGE}, "resource"),
    ({"resource": 2**63 - 1}, "resource"),  # in range, does not exist
    ({"resource": {"id": 1}}, "resource"),
    ({"resource": None}, "non_field_errors"),
    ({"group": 1}, "non_field_errors"),  # both resource and group
    ({"target_site": "atlantis"}, "target_site"),
    ({"target_site": "east"}, "target_site"),  # the current primary
    ({"target_site": str(HUGE)}, "target_site"),
    ({"target_site": {"name": "west"}}, "target_site"),
    ({"target_site": None}, "target_site"),
    ({"reason": ""}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"reason": "x" * 5000}, "reason"),
    ({"reason": 12}, None),  # numbers are valid text for DRF: accepted below as "12"
    ({"change_ticket": ""}, "change_ticket"),  # tier 1 requires one
    ({"change_ticket": "CHG12"}, "change_ticket"),
    ({"change_ticket": "DROP TABLE"}, "change_ticket"),
    ({"change_ticket": "C" * 200}, "change_ticket"),
    ({"change_ticket": ["CHG0012345"]}, "change_ticket"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("patch", "field"), REQUEST_CASES, ids=[str(c[0])[:40] for c in REQUEST_CASES]
)
def test_create_request_bad_input(people, resource, client_for, default_policies, patch, field):
    body = {**_good(resource), **patch}
    response = client_for(people["op"]).post(URL, body, format="json")
    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not ExecutionRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.created").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["kind", "target_site", "reason"])
def test_missing_fields(people, resource, client_for, default_policies, missing):
    body = _good(resource)
    del body[missing]
    response = client_for(people["op"]).post(URL, body, format="json")
    assert response.status_code == 400 and missing in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    ["{not json", "[]", '"a string"', "null", "12"],
)
def test_malformed_bodies(people, client_for, default_policies, raw):
    response = client_for(people["op"]).generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_unknown_or_hostile_ids_in_the_path(people, client_for):
    client = client_for(people["it"])
    for path in [f"{URL}999/", f"{URL}{HUGE}/", f"{URL}{HUGE}/approve/", f"{URL}abc/"]:
        response = client.post(path, {}, format="json") if "approve" in path else client.get(path)
        assert response.status_code == 404, path


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"comment": ["x"]}, {"comment": {"a": 1}}, {"comment": "x" * 5000}],
)
def test_vote_bodies(people, make_request, client_for, body):
    request = make_request()
    response = client_for(people["it"]).post(f"{URL}{request.pk}/approve/", body, format="json")
    assert response.status_code == 400 and "comment" in response.json()
    assert not request.approvals.exists()


@pytest.mark.django_db
def test_deny_needs_a_comment(people, make_request, client_for):
    request = make_request()
    response = client_for(people["biz"]).post(f"{URL}{request.pk}/deny/", {}, format="json")
    assert response.status_code == 400 and "comment" in response.json()
    request.refresh_from_db()
    assert request.state == "pending_approval"


GRANT_CASES = [
    ({"reason": ""}, "reason"),
    ({"reason": None}, "reason"),
    ({"minutes": 0}, "minutes"),
    ({"minutes": -5}, "minutes"),
    ({"minutes": HUGE}, "minutes"),
    ({"minutes": 241}, "minutes"),
    ({"minutes": "ten"}, "minutes"),
    ({"minutes": 1.5}, "minutes"),
    ({"scope": "orders-db"}, "scope"),
    ({"scope": []}, "scope"),
    ({"scope": {}}, "scope"),
    ({"scope": {"resource": 1, "group": 1}}, "scope"),
    ({"scope": {"resource": HUGE}}, "scope"),
    ({"scope": {"resource": 424242}}, "scope"),
    ({"scope": {"group": 424242}}, "scope"),
    ({"scope": {"resource": "x"}}, "scope"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("patch", "field"), GRANT_CASES, ids=[str(c[0])[:40] for c in GRANT_CASES])
def test_open_grant_bad_input(eligible, resource, client_for, patch, field):
    body = {"reason": "outage", "scope": {"resource": resource.pk}, "minutes": 30, **patch}
    response = client_for(eligible).post("/api/v1/breakglass/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not BreakGlassGrant.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {},
        {"kind": "failover"},
        {"kind": "nope", "resource": 1},
        {"kind": "failover", "resource": "x"},
        {"kind": "failover", "resource": str(HUGE)},
        {"kind": "failover", "resource": "1", "group": "1"},
        {"kind": "failover", "group": "999"},
    ],
)
def test_policy_preview_bad_query(people, client_for, resource, query):
    response = client_for(people["op"]).get("/api/v1/policies/preview/", query)
    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("value", [str(HUGE), "-2.37e288", "3.3e16", "1.5", "0", "x"])
@pytest.mark.parametrize("name", ["resource", "group"])
def test_list_filters_refuse_ids_that_cannot_exist(people, make_request, client_for, name, value):
    """Found by fuzzing: an id past 64 bits overflowed SQLite (HTTP 500 on the default store)."""
    make_request()
    response = client_for(people["op"]).get(URL, {name: value})
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.django_db
def test_list_filters_by_resource_id(people, make_request, resource, client_for):
    request = make_request()
    listed = client_for(people["op"]).get(URL, {"resource": str(resource.pk)}).json()
    assert [row["id"] for row in listed["results"]] == [request.pk]
    assert (
        client_for(people["op"]).get(URL, {"resource": str(resource.pk + 1000)}).json()["count"]
        == 0
    )
