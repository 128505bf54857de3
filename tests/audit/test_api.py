"""The audit API: auditors and admins read everything, nobody writes, bad input is a 400."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit import services
from audit.checkpoints import checkpoint_create
from audit.models import AuditEvent

ROUTES = [
    reverse("audit-events"),
    reverse("audit-events") + "?format=jsonl",
    reverse("audit-events") + "?format=csv",
    reverse("audit-verify"),
    reverse("audit-checkpoints"),
    reverse("audit-public-keys"),
    reverse("audit-config-history"),
    reverse("audit-config-history-detail", args=["resource"]),
    reverse("audit-config-history-detail", args=["site"]) + "?format=csv",
]
READERS = ["auditor", "admin"]
OTHERS = ["viewer", "operator", "approver_it", "approver_business", "norole"]
WRITES = ["post", "put", "patch", "delete"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROUTES)
def test_anonymous_gets_401(client_for, url):
    assert client_for(None).get(url).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROUTES)
@pytest.mark.parametrize("role", OTHERS)
def test_other_roles_get_403(client_for, users, url, role):
    assert client_for(users[role]).get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROUTES)
@pytest.mark.parametrize("role", READERS)
def test_auditor_and_admin_read_every_route(client_for, users, signing_keys, url, role):
    services.record(action="test.event", object_name="x")
    response = client_for(users[role]).get(url)
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROUTES)
@pytest.mark.parametrize("role", READERS)
@pytest.mark.parametrize("method", WRITES)
def test_nobody_writes_through_the_audit_api(client_for, users, url, role, method):
    services.record(action="test.event")
    before = list(AuditEvent.objects.values_list("seq", "hash"))
    response = getattr(client_for(users[role]), method)(url, {"action": "forged"}, format="json")
    assert response.status_code in (403, 405)
    assert list(AuditEvent.objects.values_list("seq", "hash")) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, field",
    [
        ("since=yesterday", "since"),
        ("until=2026-02-30T00:00:00Z", "until"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("format=xml", "format"),
        ("from_seq=0", "from_seq"),
        ("from_seq=abc", "from_seq"),
        ("to_seq=99999999999999999999999", "to_seq"),
        ("from_seq=5&to_seq=4", "to_seq"),
        ("actor_id=-1", "actor_id"),
        ("kind=" + "k" * 101, "kind"),
    ],
)
def test_bad_query_is_a_400_with_field_errors(client_for, users, query, field):
    response = client_for(users["auditor"]).get(reverse("audit-events") + "?" + query)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_bad_cursor_is_not_a_500(client_for, users):
    response = client_for(users["auditor"]).get(reverse("audit-events") + "?cursor=%%%garbage")
    assert response.status_code == 404


@pytest.mark.django_db
def test_filters(client_for, users, make_user):
    carol = make_user("admin", username="carol")
    services.record(action="request.created", actor=carol, object_type="req", object_id=1)
    services.record(action="request.approved", actor="worker", object_type="req", object_id=1)
    services.record(action="resource.updated", actor=carol, object_type="res", object_id=7)
    base = AuditEvent.objects.get(action="request.created").seq
    client = client_for(users["auditor"])

    def actions(query: str) -> list[str]:
        data = client.get(reverse("audit-events") + "?" + query).json()
        return [e["action"] for e in data["results"] if e["seq"] >= base]

    assert actions("kind=request.") == ["request.created", "request.approved"]
    assert actions("actor=carol") == ["request.created", "resource.updated"]
    assert actions(f"actor_id={carol.pk}") == ["request.created", "resource.updated"]
    assert actions("object_type=res&object_id=7") == ["resource.updated"]
    assert actions(f"from_seq={base + 1}&to_seq={base + 1}") == ["request.approved"]
    assert actions("since=2000-01-01T00:00:00Z&until=2000-01-02") == []
    assert len(actions("since=2000-01-01")) == 3


@pytest.mark.django_db
def test_pagination_is_stable_while_events_arrive(client_for, users):
    for i in range(5):
        services.record(action="page.event", object_id=i)
    client = client_for(users["auditor"])
    url = reverse("audit-events") + "?kind=page.&page_size=2"
    seen: list[int] = []
    page = client.get(url).json()
    while True:
        seen += [e["seq"] for e in page["results"]]
        # Appends between page requests land after the cursor, never shift earlier pages.
        services.record(action="page.event", object_id="late")
        if not page["next"] or len(seen) > 50:
            break
        page = client.get(page["next"]).json()
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert set(seen) >= set(
        AuditEvent.objects.filter(action="page.event")
        .order_by("seq")
        .values_list("seq", flat=True)[:5]
    )


@pytest.mark.django_db
def test_json_page_carries_the_covering_checkpoint(client_for, users, signing_keys):
    for i in range(3):
        services.record(action="cp.event", object_id=i)
    checkpoint_create()
    services.record(action="cp.event", object_id="after")
    data = client_for(users["auditor"]).get(reverse("audit-events")).json()
    head = AuditEvent.objects.order_by("-seq")[1]
    assert data["checkpoint"]["seq"] == head.seq and data["checkpoint"]["hash"] == head.hash
    event = data["results"][0]
    assert event["at"].endswith("+00:00") and len(event["hash"]) == 64


@pytest.mark.django_db
def test_verify_route_reports_chain_and_checkpoints(client_for, users, signing_keys):
    services.record(action="v.event")
    checkpoint_create()
    data = client_for(users["auditor"]).get(reverse("audit-verify")).json()
    assert data["ok"] is True and data["first_bad_seq"] is None
    assert data["events_checked"] == AuditEvent.objects.count()
    assert data["checkpoints"]["latest_seq"] == AuditEvent.objects.order_by("-seq")[0].seq
    assert data["checkpoints"]["problems"] == []


@pytest.mark.django_db
def test_verify_route_names_the_first_bad_seq(client_for, users, tamper):
    for i in range(3):
        services.record(action="v.event", object_id=i)
    bad = AuditEvent.objects.order_by("seq")[1].seq
    tamper.execute("UPDATE audit_auditevent SET action = 'forged' WHERE seq = %s", [bad])
    data = client_for(users["auditor"]).get(reverse("audit-verify")).json()
    assert (data["ok"], data["first_bad_seq"]) == (False, bad)


@pytest.mark.django_db
def test_checkpoints_and_public_keys(client_for, users, signing_keys):
    services.record(action="k.event")
    checkpoint_create()
    client = client_for(users["auditor"])
    [document] = client.get(reverse("audit-checkpoints")).json()["results"]
    assert document["format"] == "bcservice.audit.checkpoint" and document["signature"]
    [key] = client.get(reverse("audit-public-keys")).json()
    assert key["key_id"] == document["key_id"] and "BEGIN PUBLIC KEY" in key["pem"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, status",
    [
        ("/api/v1/audit/events/?since=0001-01-01T00:00:00%2B14:00", 400),
        ("/api/v1/audit/events/?until=9999-12-31T23:59:59-14:00", 400),
        ("/api/v1/audit/events/?kind=%00", 400),
        ("/api/v1/audit/events/?actor=a%00b&format=csv", 400),
        ("/api/v1/audit/events/?object_id=%00", 400),
        ("/api/v1/audit/events/?page_size=-5", 200),
        ("/api/v1/audit/events/?page_size=999999999999999999999", 200),
        ("/api/v1/audit/config-history/site/?object_id=abc", 400),
        ("/api/v1/audit/config-history/site/?object_id=99999999999999999999999", 400),
        ("/api/v1/audit/config-history/site/?actor=%00", 400),
        ("/api/v1/audit/config-history/site/?cursor=zzz", 404),
        ("/api/v1/audit/checkpoints/?cursor=zzz", 404),
    ],
)
def test_hostile_queries_never_500(client_for, users, url, status):
    assert client_for(users["auditor"]).get(url).status_code == status
