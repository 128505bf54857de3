"""Auditor export of executions with their steps: content in every format after real runs with
the scripted connector, CSV escaping of hostile details and reasons, filters, the covering
checkpoint, streaming in keyset batches, and who may download it."""

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

from audit.checkpoints import checkpoint_create
from audit.models import AuditEvent
from connectors.contract import StepResult
from executions import exports, runner, services
from executions.models import Execution
from tests.audit.conftest import audit_storage, signing_keys  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

URL = "/api/v1/executions/export/"
OVERRIDE_REASON = "=cmd|' /C calc'!A0\nprimary site burning"
PROMOTE_DETAIL = '+SUM(1,2) said "promoted", and more\r\nsecond line'
FENCE_DETAIL = "@import: fence refused"


def _start(request, operator, **kwargs):
    name = request.resource.name if request.resource_id else request.group.name
    return services.execution_start(actor=operator, request=request, confirm=name, **kwargs)


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
def world(script, approved_request, operator, signing_keys):  # noqa: F811
    """A failover run with a guard override (succeeded), a switchover whose fence failed, and a
    queued drill nobody ran; then a signed checkpoint."""
    script.results["reachable"] = StepResult(
        ok=False,
        detail="old primary still accepts writes",
        overridable=True,
        override_needs_policy=False,
    )
    script.results["promote"] = StepResult(
        ok=True, detail=PROMOTE_DETAIL, data={"caught_up_to": "0/5", "marker_before": "0/1"}
    )
    done = _start(
        approved_request(kind="failover"),
        operator,
        overrides=["reachable"],
        override_reason=OVERRIDE_REASON,
    )
    assert runner.run_execution(done.pk) == "succeeded"
    script.results.clear()
    script.results["fence"] = StepResult(ok=False, detail=FENCE_DETAIL)
    failed = _start(approved_request(), operator)
    assert runner.run_execution(failed.pk) == "failed"
    queued = _start(approved_request(kind="drill"), operator)
    checkpoint_create()
    return {
        e: Execution.objects.get(pk=x.pk)
        for e, x in {"done": done, "failed": failed, "queued": queued}.items()
    }


@pytest.fixture
def auditor(make_user):
    return make_user("auditor", username="aud")


def test_json_document_holds_executions_steps_and_the_covering_checkpoint(
    client_for, auditor, world
):
    document = _document(client_for(auditor))
    header, rows, trailer = document["header"], document["rows"], document["trailer"]
    assert header["format"] == "bcservice.executions.executions"
    assert header["audit_head_seq"] == AuditEvent.objects.aggregate(m=Max("seq"))["m"]
    done, failed, queued = world["done"], world["failed"], world["queued"]
    assert [r["id"] for r in rows] == [done.pk, failed.pk, queued.pk]

    row = rows[0]
    assert row["state"] == "succeeded" and row["kind"] == "failover"
    assert row["request_id"] == done.request_id and row["scope"] == done.request.resource.name
    assert row["target_site"] == "west" and row["change_ticket"] == "CHG1234567"
    assert row["requested_by"] == "op1" and row["started_by"] == "op1"
    assert row["overrides"] == ["reachable"] and row["override_reason"] == OVERRIDE_REASON
    assert row["started_at"] == done.started_at.isoformat(timespec="microseconds")
    assert row["duration_seconds"] == (done.finished_at - done.started_at).total_seconds()
    steps = row["steps"]
    assert [(s["name"], s["phase"], s["state"]) for s in steps] == [
        ("reachable", "precheck", "overridden"),
        ("lag_ok", "precheck", "succeeded"),
        ("fence", "step", "succeeded"),
        ("promote", "step", "succeeded"),
        ("roles_swapped", "postcheck", "succeeded"),
    ]
    promote = steps[3]
    assert promote["detail"] == PROMOTE_DETAIL and promote["data"]["caught_up_to"] == "0/5"
    assert promote["started_at"] <= promote["finished_at"] and promote["changes_state"] is True
    name = done.request.resource.name
    assert row["outcome"] == {name: {"outcome": "done", "conclusion": "caught_up"}}
    assert row["evidence"] == done.evidence
    assert row["evidence"]["resources"][name]["evidence"]["marker_before"] == "0/1"

    assert rows[1]["state"] == "failed" and rows[1]["state_reason"] == failed.state_reason
    fence = next(s for s in rows[1]["steps"] if s["name"] == "fence")
    assert fence["state"] == "failed" and fence["detail"] == FENCE_DETAIL
    assert rows[2]["state"] == "queued" and rows[2]["started_at"] is None
    assert rows[2]["kind"] == "drill" and rows[2]["outcome"] == {}

    for row in rows:
        span = AuditEvent.objects.filter(
            object_type="executions.execution", object_id=str(row["id"])
        ).aggregate(first=Min("seq"), last=Max("seq"))
        assert (row["audit_first_seq"], row["audit_last_seq"]) == (span["first"], span["last"])
    audit = trailer["audit"]
    assert trailer["rows"] == 3 and audit["covered"] is True
    assert audit["last_seq"] == max(r["audit_last_seq"] for r in rows)
    assert audit["checkpoint"]["seq"] >= audit["last_seq"] and audit["checkpoint"]["signature"]


def test_jsonl_has_the_same_rows_between_header_and_trailer(client_for, auditor, world):
    client = client_for(auditor)
    document = _document(client)
    response = _get(client, "format=jsonl")
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert lines[0]["record"] == "header" and lines[-1]["record"] == "trailer"
    assert [{k: v for k, v in ln.items() if k != "record"} for ln in lines[1:-1]] == document[
        "rows"
    ]


def test_csv_escapes_hostile_reasons_and_keeps_step_details_intact(client_for, auditor, world):
    response = _get(client_for(auditor), "format=csv")
    assert 'filename="executions.csv"' in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(_body(response), newline="")))
    columns, rows, meta = table[0], table[1:-1], table[-1]
    assert columns == [*exports.COLUMNS, "audit_first_seq", "audit_last_seq"]
    by_id = {int(r[0]): dict(zip(columns, r, strict=True)) for r in rows}
    done = by_id[world["done"].pk]
    assert done["override_reason"] == "'" + OVERRIDE_REASON
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    steps = json.loads(done["steps"])
    assert steps[3]["detail"] == PROMOTE_DETAIL
    failed_steps = json.loads(by_id[world["failed"].pk]["steps"])
    assert FENCE_DETAIL in [s["detail"] for s in failed_steps]
    assert json.loads(done["overrides"]) == ["reachable"] and done["state"] == "succeeded"
    assert by_id[world["queued"].pk]["started_at"] == ""
    assert meta[0] == "# export" and json.loads(meta[1])["audit"]["covered"] is True


def test_filters_by_state_kind_scope_request_and_start_time(client_for, auditor, world):
    client = client_for(auditor)
    done, failed, queued = world["done"], world["failed"], world["queued"]
    assert _ids(_document(client, "state=failed")) == [failed.pk]
    assert _ids(_document(client, "kind=drill")) == [queued.pk]
    assert _ids(_document(client, f"resource={done.request.resource_id}")) == [done.pk]
    assert _ids(_document(client, f"request={failed.request_id}")) == [failed.pk]
    Execution.objects.filter(pk=done.pk).update(started_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+", "%2B")
    until = (timezone.now() - timedelta(days=2)).isoformat().replace("+", "%2B")
    # The queued drill never started: its queue time counts.
    assert _ids(_document(client, "since=" + since)) == [failed.pk, queued.pk]
    assert _ids(_document(client, "until=" + until)) == [done.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=pending_approval", "state"),
        ("kind=restore", "kind"),
        ("until=not-a-time", "until"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("resource=999999", "resource"),
        ("request=0", "request"),
        ("format=pdf", "format"),
    ],
)
def test_bad_filters_are_400_with_field_errors(client_for, auditor, query, field):
    response = client_for(auditor).get(URL + "?" + query)
    assert response.status_code == 400
    assert field in response.json()


def _pages(queries) -> list[str]:
    table = Execution._meta.db_table
    return [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"] and "LIMIT 2" in q["sql"]]


def test_streams_in_keyset_batches_with_steps_prefetched(client_for, auditor, world, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 2)
    response = _get(client_for(auditor), "format=csv")
    with CaptureQueriesContext(connection) as queries:
        chunks = iter(response.streaming_content)
        rows = iter(exports.executions_export(exports.executions_matching(), filters={}).rows)
        assert _pages(queries) == []  # nothing read until rows are asked for
        next(rows)
        assert len(_pages(queries)) == 1
        body = b"".join(chunks).decode()
    assert len(_pages(queries)) == 1 + 2  # the direct read's first page; the response's 2 + 1
    steps = [q for q in queries if 'FROM "executions_executionstep"' in q["sql"]]
    assert len(steps) == 1 + 2  # one prefetch per page, not one per execution
    assert len(list(csv.reader(io.StringIO(body, newline="")))) == 1 + 3 + 1


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (None, 401),
        ("viewer", 403),
        ("operator", 403),
        ("approver_it", 403),
        ("auditor", 200),
        ("admin", 200),
    ],
)
def test_only_auditors_and_admins_may_export(client_for, users, role, status):
    response = client_for(users[role] if role else None).get(URL + "?format=jsonl")
    assert response.status_code == status
