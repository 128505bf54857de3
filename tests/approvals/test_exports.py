"""Auditor export of requests with their approvals: content in every format, CSV escaping of
hostile reasons and comments, filters, the covering checkpoint, streaming in keyset batches,
and who may download it."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Max, Min
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import exports, services
from approvals.models import ExecutionRequest
from audit.checkpoints import checkpoint_create
from audit.models import AuditEvent
from tests.audit.conftest import audit_storage, signing_keys  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

URL = "/api/v1/requests/export/"
HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@import",
    'quote " inside, and a comma',
    "two\nlines\r\nand more",
]


def _get(client, query: str = "") -> StreamingHttpResponse:
    response = client.get(URL + ("?" + query if query else ""))
    assert response.status_code == 200, getattr(response, "data", response)
    assert isinstance(response, StreamingHttpResponse)
    return response


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def _document(client, query: str = "") -> dict:
    return json.loads(_body(_get(client, "format=json" + ("&" + query if query else ""))))


def _ids(document: dict) -> list[int]:
    return [row["id"] for row in document["rows"]]


@pytest.fixture
def world(make_request, people, signing_keys):  # noqa: F811
    """An approved request (hostile reason and comments), a denied one, a pending drill; then a
    signed checkpoint."""
    approved = make_request(reason=HOSTILE[0] + "\n" + HOSTILE[5])
    services.request_approve(approved, actor=people["it"], comment=HOSTILE[1])
    services.request_approve(approved, actor=people["biz"], comment=HOSTILE[4])
    denied = make_request(reason=HOSTILE[2])
    services.request_deny(denied, actor=people["it"], comment=HOSTILE[3])
    pending = make_request(kind="drill", reason="quarterly drill")
    checkpoint_create()
    for request in (approved, denied, pending):
        request.refresh_from_db()
    return {"approved": approved, "denied": denied, "pending": pending}


def test_json_document_holds_requests_votes_and_the_covering_checkpoint(client_for, people, world):
    document = _document(client_for(people["auditor"]))
    header, rows, trailer = document["header"], document["rows"], document["trailer"]
    assert header["format"] == "bcservice.approvals.requests" and header["version"] == 1
    assert header["audit_head_seq"] == AuditEvent.objects.aggregate(m=Max("seq"))["m"]
    approved, denied = world["approved"], world["denied"]
    assert [r["id"] for r in rows] == [approved.pk, denied.pk, world["pending"].pk]

    row = rows[0]
    assert row["state"] == "approved" and row["kind"] == "switchover"
    assert row["reason"] == HOSTILE[0] + "\n" + HOSTILE[5]
    assert row["scope"] == "orders-db" and row["resource"] == "orders-db"
    assert row["resource_id"] == approved.resource_id and row["group"] is None
    assert row["target_site"] == "west" and row["requested_by"] == "op"
    assert row["change_ticket"] == "CHG0012345"
    assert row["policy_fingerprint"] == approved.policy_fingerprint
    assert row["policy_snapshot"] == approved.policy_snapshot
    assert row["policy"] == approved.policy_snapshot["name"]
    assert row["approved_at"] == approved.approved_at.isoformat(timespec="microseconds")
    assert row["approvals_required"]["satisfied"] is True
    votes = row["approvals"]
    assert [(v["approver"], v["decision"], v["comment"]) for v in votes] == [
        ("it1", "approve", HOSTILE[1]),
        ("biz1", "approve", HOSTILE[4]),
    ]
    assert [v["role_counted"] for v in votes] == ["approver_it", "approver_business"]
    assert all(v["valid"] and v["at"].endswith("+00:00") for v in votes)
    stored = list(approved.approvals.order_by("at", "id"))
    assert [v["readiness"] for v in votes] == [a.readiness for a in stored]
    assert votes[0]["readiness"][0]["name"] == "orders-db"

    assert rows[1]["state"] == "rejected" and rows[1]["approvals"][0]["decision"] == "deny"
    assert rows[1]["approvals"][0]["role_counted"] is None

    # Each row names the audit events about it; the trailer the checkpoint covering them all.
    for row in rows:
        span = AuditEvent.objects.filter(
            object_type="approvals.executionrequest", object_id=str(row["id"])
        ).aggregate(first=Min("seq"), last=Max("seq"))
        assert (row["audit_first_seq"], row["audit_last_seq"]) == (span["first"], span["last"])
    audit = trailer["audit"]
    assert trailer["rows"] == 3 and audit["covered"] is True
    assert audit["last_seq"] == max(r["audit_last_seq"] for r in rows)
    assert audit["checkpoint"]["seq"] >= audit["last_seq"]
    assert audit["checkpoint"]["signature"] and audit["checkpoint"]["key_id"]


def test_jsonl_has_the_same_rows_between_header_and_trailer(client_for, people, world):
    client = client_for(people["auditor"])
    document = _document(client)
    response = _get(client, "format=jsonl")
    assert response["Content-Type"] == "application/x-ndjson"
    assert 'filename="requests.jsonl"' in response["Content-Disposition"]
    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert lines[0]["record"] == "header" and lines[-1]["record"] == "trailer"
    rows = [{k: v for k, v in line.items() if k != "record"} for line in lines[1:-1]]
    assert rows == document["rows"]
    assert lines[-1]["audit"] == document["trailer"]["audit"]


def test_csv_escapes_hostile_reasons_and_keeps_comments_intact(client_for, people, world):
    response = _get(client_for(people["admin"]), "format=csv")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(_body(response), newline="")))
    columns, rows, meta = table[0], table[1:-1], table[-1]
    assert columns == [*exports.COLUMNS, "audit_first_seq", "audit_last_seq"]
    by_id = {int(r[0]): dict(zip(columns, r, strict=True)) for r in rows}
    approved = by_id[world["approved"].pk]
    # A formula start gets a leading quote; the newline and quotes survive RFC 4180 quoting.
    assert approved["reason"] == "'" + HOSTILE[0] + "\n" + HOSTILE[5]
    assert by_id[world["denied"].pk]["reason"] == "'" + HOSTILE[2]
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    votes = json.loads(approved["approvals"])
    assert [v["comment"] for v in votes] == [HOSTILE[1], HOSTILE[4]]
    assert json.loads(by_id[world["denied"].pk]["approvals"])[0]["comment"] == HOSTILE[3]
    assert approved["breakglass_grant"] == "" and approved["state"] == "approved"
    assert meta[0] == "# export"
    trailer = json.loads(meta[1])
    assert trailer["format"] == "bcservice.approvals.requests" and trailer["rows"] == 3
    assert trailer["audit"]["covered"] is True


def test_filters_by_kind_state_scope_and_creation_time(client_for, people, world, make_resource):
    client = client_for(people["auditor"])
    approved, denied, pending = world["approved"], world["denied"], world["pending"]
    assert _ids(_document(client, "kind=drill")) == [pending.pk]
    assert _ids(_document(client, "state=rejected")) == [denied.pk]
    assert _ids(_document(client, "kind=switchover&state=approved")) == [approved.pk]
    assert len(_ids(_document(client, f"resource={approved.resource_id}"))) == 3
    other = make_resource("other-db")
    assert _ids(_document(client, f"resource={other.pk}")) == []
    ExecutionRequest.objects.filter(pk=approved.pk).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    since = (timezone.now() - timedelta(days=1)).isoformat()
    until = (timezone.now() - timedelta(days=2)).isoformat()
    params = {"since": since}
    document = _document(client, "since=" + since.replace("+", "%2B"))
    assert _ids(document) == [denied.pk, pending.pk]
    assert document["header"]["filters"] == params
    assert _ids(_document(client, "until=" + until.replace("+", "%2B"))) == [approved.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=bogus", "state"),
        ("kind=restore", "kind"),
        ("since=yesterday", "since"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("resource=abc", "resource"),
        ("resource=999999", "resource"),
        ("group=999999", "group"),
        ("format=xml", "format"),
    ],
)
def test_bad_filters_are_400_with_field_errors(client_for, people, query, field):
    response = client_for(people["auditor"]).get(URL + "?" + query)
    assert response.status_code == 400
    assert field in response.json()


def test_without_a_checkpoint_the_export_says_it_is_not_covered_yet(
    client_for, people, make_request
):
    make_request()
    audit = _document(client_for(people["auditor"]))["trailer"]["audit"]
    assert audit["covered"] is False and audit["checkpoint"] is None
    assert audit["last_seq"] is not None


def _pages(queries) -> list[str]:
    table = ExecutionRequest._meta.db_table
    return [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"] and "LIMIT 2" in q["sql"]]


def test_streams_in_keyset_batches_and_is_pinned_at_the_start(
    client_for, people, make_request, monkeypatch
):
    monkeypatch.setattr(exports, "BATCH", 2)
    made = [make_request(reason=f"r{i}") for i in range(5)]
    response = _get(client_for(people["auditor"]), "format=jsonl")
    with CaptureQueriesContext(connection) as queries:
        chunks = iter(response.streaming_content)
        first = next(chunks)
        assert b'"record":"header"' in first
        assert _pages(queries) == []  # nothing read before the response is being sent
        late = make_request(reason="created while the export runs")
        rest = b"".join(chunks)
    assert len(_pages(queries)) == 3  # 2 + 2 + 1 rows: a short page ends it
    lines = [json.loads(line) for line in (first + rest).decode().splitlines()]
    assert [line["id"] for line in lines[1:-1]] == [r.pk for r in made]
    assert late.pk not in [line.get("id") for line in lines]
    # Votes are prefetched per page, not read per request.
    assert len([q for q in queries if 'FROM "approvals_approval"' in q["sql"]]) == 3


def test_rows_are_an_iterator_reading_one_page_at_a_time(make_request, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 2)
    for i in range(5):
        make_request(reason=f"r{i}")
    export = exports.requests_export(exports.requests_matching(), filters={})
    rows = export.rows
    assert not isinstance(rows, list | tuple)
    with CaptureQueriesContext(connection) as queries:
        next(rows), next(rows)
        assert len(_pages(queries)) == 1
        next(rows)
        assert len(_pages(queries)) == 2
        assert len(list(rows)) == 2
    assert len(_pages(queries)) == 3
    assert export.trailer()["rows"] == 5


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("viewer", 403), ("op", 403), ("it", 403), ("auditor", 200), ("admin", 200)],
)
def test_only_auditors_and_admins_may_export(client_for, people, who, status):
    user = people[who] if who else None
    response = client_for(user).get(URL + "?format=csv")
    assert response.status_code == status


def test_export_route_refuses_writes_even_for_auditors(client_for, people):
    assert client_for(people["auditor"]).post(URL, {}).status_code == 403
