"""The evidence report of a request (requests/{id}/evidence/): real requests approved and run by
the runner through the scripted connector, read back through the API as JSON and HTML."""

from __future__ import annotations

import pytest
from django.db.models import Q
from guardian.shortcuts import assign_perm

from approvals.models import Approval
from audit.models import AuditEvent
from connectors.contract import StepResult
from executions import runner, services

pytestmark = pytest.mark.django_db

LOSSLESS = StepResult(
    ok=True,
    detail="promoted",
    data={"caught_up_to": "0/3000060", "marker_after": "0/3000100"},
)
PLAIN = StepResult(ok=True, detail="ok")
LOSSY = StepResult(
    ok=True,
    detail="promoted with the old primary unreachable",
    data={
        "marker_before": "0/5000000",
        "potential_loss_window_seconds": 2.5,
        "last_markers": {"primary": "0/5000000", "standby": "0/4FFF000"},
        "rto_measured_seconds": 4.25,
        "write_unavailable_seconds": 3.5,
    },
)


@pytest.fixture(autouse=True)
def _markers(script):
    """Steps report no markers unless a test says so; the first check reads the primary's."""
    for name in ("lag_ok", "fence", "roles_swapped"):
        script.results[name] = PLAIN
    script.results["reachable"] = StepResult(
        ok=True, detail="both reachable", data={"marker_before": "0/3000000"}
    )


def _run(request, operator, **kwargs):
    name = request.resource.name if request.resource_id else request.group.name
    execution = services.execution_start(actor=operator, request=request, confirm=name, **kwargs)
    runner.run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def _evidence(client, request_id, fmt=None):
    url = f"/api/v1/requests/{request_id}/evidence/" + (f"?format={fmt}" if fmt else "")
    return client.get(url)


def _audit_events(request, execution):
    return AuditEvent.objects.filter(
        Q(object_type="approvals.executionrequest", object_id=str(request.pk))
        | Q(object_type="executions.execution", object_id=str(execution.pk))
    ).order_by("seq")


def test_lossless_switchover_report(script, approved_request, operator, users, client_for):
    script.results["promote"] = LOSSLESS
    request = approved_request(kind="switchover")
    execution = _run(request, operator)
    response = _evidence(client_for(users["auditor"]), request.pk)
    assert response.status_code == 200, response.content
    report = response.json()

    conclusion = report["conclusion"]
    assert conclusion["code"] == "caught_up"
    assert conclusion["text"] == "Caught up to marker 0/3000060: no committed data was lost."
    (res,) = report["resources"]
    assert res["resource"] == request.resource.name and res["outcome"] == "done"
    assert res["markers"]["marker_before"] == "0/3000000"
    assert res["markers"]["marker_after"] == "0/3000100"
    assert res["provisional"] is False

    # Approvals: who, when (the stored times exactly), with which roles, and readiness then.
    votes = list(Approval.objects.filter(request=request).select_related("approver").order_by("at"))
    assert len(votes) == 2
    assert [(a["approver"], a["at"]) for a in report["approvals"]] == [
        (v.approver.username, v.at.isoformat()) for v in votes
    ]
    assert {a["role_counted"] for a in report["approvals"]} == {
        "approver_it",
        "approver_business",
    }
    assert report["approvals"][0]["readiness"][0]["name"] == request.resource.name
    assert report["request"]["requested_by"] == "op1"
    assert report["policy"]["snapshot"] == request.policy_snapshot
    assert report["scope"]["type"] == "resource"
    assert report["scope"]["members"][0]["name"] == request.resource.name

    # Steps with times; prechecks at start; no overrides.
    assert [s["name"] for s in report["steps"]] == [
        "reachable",
        "lag_ok",
        "fence",
        "promote",
        "roles_swapped",
    ]
    assert all(s["started_at"] and s["finished_at"] for s in report["steps"])
    assert [s["name"] for s in report["prechecks"]["at_start"]] == ["reachable", "lag_ok"]
    assert report["prechecks"]["overrides"] == {"chosen": [], "reason": "", "used": []}
    assert report["execution"]["id"] == execution.pk
    assert report["execution"]["state"] == "succeeded"

    # The audit range is exactly the events about the request and its execution.
    events = list(_audit_events(request, execution).values_list("seq", "action"))
    audit = report["audit"]
    assert audit["first_seq"] == events[0][0] and audit["last_seq"] == events[-1][0]
    assert [(e["seq"], e["action"]) for e in audit["events"]] == events
    assert audit["count"] == len(events)
    assert "request.created" in {a for _, a in events}
    assert "execution.succeeded" in {a for _, a in events}
    assert audit["covered"] is False and audit["checkpoint"] is None
    assert audit["coverage"].startswith("Not yet covered by a checkpoint")


def test_checkpoint_covering_the_request_is_named(
    script, approved_request, operator, users, client_for, settings, tmp_path
):
    from audit.checkpoints import checkpoint_create
    from audit.signing import generate_key_pair

    settings.BC_AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    settings.BC_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "keys" / "signing.pem")
    settings.BC_AUDIT_PUBLIC_KEY_FILE = str(tmp_path / "keys" / "signing.pub.pem")
    settings.BC_AUDIT_S3_BUCKET = ""
    generate_key_pair(tmp_path / "keys" / "signing.pem", tmp_path / "keys" / "signing.pub.pem")
    script.results["promote"] = LOSSLESS
    request = approved_request()
    execution = _run(request, operator)
    outcome = checkpoint_create()
    assert outcome.created
    report = _evidence(client_for(users["auditor"]), request.pk).json()["audit"]
    last = _audit_events(request, execution).last()
    assert report["last_seq"] == last.seq
    assert report["covered"] is True
    assert report["checkpoint"]["seq"] == outcome.seq >= last.seq
    assert report["checkpoint"]["signature"]
    assert f"covered by the signed checkpoint at seq {outcome.seq}" in report["coverage"]


def test_failover_with_a_loss_window(script, approved_request, operator, users, client_for):
    script.results["promote"] = LOSSY
    request = approved_request(kind="failover")
    _run(request, operator)
    client = client_for(users["admin"])
    report = _evidence(client, request.pk).json()
    expected = (
        "Potential loss window up to 2.5 s (last markers seen: primary 0/5000000, "
        "standby 0/4FFF000)."
    )
    assert report["conclusion"]["code"] == "potential_loss"
    assert report["conclusion"]["text"] == expected
    (res,) = report["resources"]
    assert res["measured"]["rto_seconds"] == 4.25
    assert res["measured"]["write_unavailable_seconds"] == 3.5
    assert res["measured"]["potential_loss_window_seconds"] == 2.5
    assert res["measured"]["rpo_seconds"] is None

    page = _evidence(client, request.pk, "html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert expected in html
    assert "@media print" in html
    for vote in Approval.objects.filter(request=request).select_related("approver"):
        assert vote.approver.username in html and vote.at.isoformat() in html


def test_drill_report_gives_measured_rpo(script, approved_request, operator, users, client_for):
    script.results["promote"] = StepResult(
        ok=True, data={"rpo_measured_seconds": 0.42, "rto_measured_seconds": 0.0}
    )
    request = approved_request(kind="drill")
    _run(request, operator)
    report = _evidence(client_for(users["auditor"]), request.pk).json()
    assert report["conclusion"]["code"] == "drill_measured"
    assert "in 0.420 s" in report["conclusion"]["text"]
    assert report["resources"][0]["measured"]["rpo_seconds"] == 0.42


def test_html_escapes_hostile_text(script, approved_request, operator, users, client_for):
    hostile = '<script>alert("reason")</script>'
    script.results["reachable"] = StepResult(
        ok=False,
        detail="<img src=x onerror=alert(1)> still accepts writes",
        overridable=True,
        override_needs_policy=False,
    )
    request = approved_request(kind="failover")
    # The reason is what the requester typed; put hostile text there and in the override.
    type(request).objects.filter(pk=request.pk).update(reason=hostile)
    request.refresh_from_db()
    execution = _run(
        request, operator, overrides=["reachable"], override_reason=f"burning {hostile}"
    )
    assert execution.state == "succeeded"
    page = _evidence(client_for(users["auditor"]), request.pk, "html").content.decode()
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;reason&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    report = _evidence(client_for(users["auditor"]), request.pk).json()
    assert report["prechecks"]["overrides"]["chosen"] == ["reachable"]
    assert report["prechecks"]["overrides"]["reason"] == f"burning {hostile}"
    (used,) = report["prechecks"]["overrides"]["used"]
    assert used["step"] == "reachable" and "overridden by the operator" in used["detail"]


def test_request_that_never_ran(approved_request, users, client_for, script):
    request = approved_request()
    client = client_for(users["viewer"])
    report = _evidence(client, request.pk).json()
    assert report["execution"] is None and report["steps"] == [] and report["resources"] == []
    assert report["conclusion"]["code"] == "not_run"
    assert report["conclusion"]["text"].startswith("The request never ran")
    assert len(report["approvals"]) == 2
    assert report["audit"]["first_seq"] is not None
    page = _evidence(client, request.pk, "html")
    assert page.status_code == 200
    assert "The request never ran" in page.content.decode()
    assert "no execution exists" in page.content.decode()


def test_prechecks_run_on_demand_are_listed(approved_request, operator, users, client_for, script):
    from executions.prechecks import run_prechecks

    script.results["lag_ok"] = StepResult(ok=False, detail="lag 90 s")
    request = approved_request()
    run_prechecks(actor=operator, request=request)
    report = _evidence(client_for(users["auditor"]), request.pk).json()
    (run,) = report["prechecks"]["on_demand"]
    assert run["by"] == "op1" and run["ok"] is False
    assert {(c["name"], c["ok"]) for c in run["results"]} == {
        ("reachable", True),
        ("lag_ok", False),
    }


def test_visibility_follows_the_request(
    script, approved_request, make_resource, make_user, client_for
):
    mine, other = make_resource("db-mine"), make_resource("db-other")
    viewer = make_user("viewer")
    assign_perm("inventory.view_resource", viewer, mine)
    visible = approved_request(resource=mine)
    hidden = approved_request(resource=other)
    client = client_for(viewer)
    assert _evidence(client, visible.pk).status_code == 200
    assert _evidence(client, hidden.pk).status_code == 404
    assert _evidence(client, hidden.pk, "html").status_code == 404
    auditor = client_for(make_user("auditor"))
    assert _evidence(auditor, hidden.pk).status_code == 200
    assert _evidence(auditor, 999999).status_code == 404
    assert (
        client_for(make_user()).get(f"/api/v1/requests/{visible.pk}/evidence/").status_code == 403
    )
    assert client_for(None).get(f"/api/v1/requests/{visible.pk}/evidence/").status_code == 401


def test_bad_format_is_a_400(approved_request, users, client_for, script):
    request = approved_request()
    response = _evidence(client_for(users["auditor"]), request.pk, "pdf")
    assert response.status_code == 400
    assert "format" in response.json()


def test_group_report_names_the_least_reassuring_member(
    script, approved_request, operator, users, client_for, make_resource
):
    from inventory import services as inventory
    from inventory.models import ResourceGroup

    a, b = make_resource("db-a"), make_resource("db-b")
    group = ResourceGroup.objects.create(name="shop", tier=1)
    inventory.group_set_members(actor=None, group=group, resources=[a, b])
    calls = {"n": 0}

    def promote_result():
        calls["n"] += 1
        return LOSSLESS if calls["n"] == 1 else LOSSY

    import unittest.mock

    orig = runner._run_step

    def run_step(execution_, step, plan_step, ctx):
        if step.name == "promote":
            script.results["promote"] = promote_result()
        return orig(execution_, step, plan_step, ctx)

    request = approved_request(group=group, kind="failover")
    with unittest.mock.patch.object(runner, "_run_step", run_step):
        _run(request, operator)
    report = _evidence(client_for(users["auditor"]), request.pk).json()
    assert [m["name"] for m in report["scope"]["members"]] == ["db-a", "db-b"]
    assert [(r["resource"], r["conclusion"]["code"]) for r in report["resources"]] == [
        ("db-a", "caught_up"),
        ("db-b", "potential_loss"),
    ]
    assert report["conclusion"]["code"] == "potential_loss"
    assert report["conclusion"]["text"].startswith("db-b: Potential loss window up to 2.5 s")


def test_started_but_not_yet_run_and_paused_mid_way(
    script, approved_request, operator, users, client_for
):
    script.results["promote"] = LOSSLESS
    request = approved_request()
    execution = services.execution_start(
        actor=operator, request=request, confirm=request.resource.name
    )
    client = client_for(users["auditor"])
    report = _evidence(client, request.pk).json()
    assert report["conclusion"]["code"] == "not_run"
    assert f"execution #{execution.pk} is queued" in report["conclusion"]["text"]

    execution.steps.filter(name="promote").update(pause_before=True)
    assert runner.run_execution(execution.pk) == "paused"
    report = _evidence(client, request.pk).json()
    assert report["execution"]["state"] == "paused"
    (res,) = report["resources"]
    assert res["provisional"] is True and res["outcome"] == "in progress"
    # Fenced but not promoted yet: nothing proves completeness so far.
    assert report["conclusion"]["code"] == "marker_unavailable"
    assert report["conclusion"]["provisional"] is True
    assert _evidence(client, request.pk, "html").status_code == 200
