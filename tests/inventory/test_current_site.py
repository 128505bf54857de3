# ruff: noqa: F811  (pytest fixtures imported from tests/executions/conftest.py)
"""The current site: where the primary role is now, recorded by executions (a succeeded
switchover/failover moves it, a failback returns it, a failed one records nothing), compared with
what monitoring observes (``unexpected_primary_site``), shown in the API and admin, and used by
the request target validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from approvals import services as approvals
from approvals.models import ExecutionRequest
from audit.models import AuditEvent
from audit.selectors import verify_chain
from connectors.contract import StepResult
from executions import runner
from executions import services as executions
from inventory import rules, services
from inventory.models import Resource, ResourceStatus, Site

# The policies the approvals migration ships, the scripted connector and approved requests.
from tests.approvals.conftest import default_policies  # noqa: F401
from tests.executions.conftest import (  # noqa: F401
    approved_request,
    operator,
    script,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _site(current="east", primary_role="primary", dr_role="standby", observed=NOW, since=None):
    return rules.SiteInput(
        primary_site="east",
        dr_site="west",
        current_site=current,
        primary_role=primary_role,
        dr_role=dr_role,
        observed_at=observed,
        current_since=since,
    )


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        (_site(), None),  # at home, seen at home
        (_site(current="west", primary_role="standby", dr_role="primary"), None),  # moved, seen
        (_site(primary_role="standby", dr_role="primary"), "primary at west, but the recorded"),
        (_site(current="west"), "monitoring sees the primary at east, but the recorded current"),
        # an observation older than the recorded move says nothing about it
        (_site(current="west", since=NOW + timedelta(seconds=1)), None),
        (_site(current="west", since=NOW), "primary at east"),  # same instant: compared
        # no single primary: both_primary / no_primary speak for themselves
        (_site(primary_role="primary", dr_role="primary"), None),
        (_site(primary_role="standby", dr_role="standby"), None),
        (_site(primary_role="", dr_role="", observed=None), None),  # never observed
    ],
)
def test_site_reason_table(site, expected):
    reason = rules.site_reason(site)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.code == "unexpected_primary_site"
        assert expected in reason.message, reason.message


def test_unexpected_primary_site_is_yellow_at_read_time():
    green = rules.Evaluation(rules.GREEN, rules.OK)
    fresh = NOW - timedelta(seconds=5)
    site = _site(primary_role="standby", dr_role="primary")
    shown = rules.at_read_time(green, fresh, 120, NOW, site=site)
    assert (shown.state, shown.visibility, shown.codes) == (
        "yellow",
        "ok",
        ["unexpected_primary_site"],
    )


# --- executions -------------------------------------------------------------------------------


def _run(request, operator):
    name = request.resource.name
    execution = executions.execution_start(actor=operator, request=request, confirm=name)
    outcome = runner.run_execution(execution.pk)
    execution.refresh_from_db()
    return outcome, execution


def _failback(operator, approve, resource, sites):
    request = approvals.request_create(
        actor=operator,
        kind="failback",
        target_site=sites["east"],
        reason="back home",
        resource=resource,
        change_ticket="CHG1234567",
    )
    return approve(request)


def _observed(resource, primary_role, dr_role, at=None):
    at = at or timezone.now()
    ResourceStatus.objects.update_or_create(
        resource=resource,
        defaults={
            "state": "green",
            "visibility": "ok",
            "reasons": [],
            "observed_at": at,
            "evaluated_at": at,
            "lag_seconds": 0.1,
            "primary_role": primary_role,
            "dr_role": dr_role,
        },
    )


def _api(client_for, users, resource):
    return client_for(users["viewer"]).get(f"/api/v1/resources/{resource.pk}/").json()


@pytest.mark.django_db
def test_switchover_moves_and_failback_returns(
    default_policies,
    script,
    approved_request,
    approve,
    operator,
    make_resource,
    sites,
    client_for,
    users,
):
    resource = make_resource("orders-db")
    body = _api(client_for, users, resource)
    assert (body["current_site"], body["away_from_home"]) == ("east", False)

    outcome, execution = _run(approved_request(resource=resource), operator)
    assert outcome == "succeeded"
    resource.refresh_from_db()
    assert resource.current_site == sites["west"] and resource.away_from_home
    assert resource.current_site_changed_at == execution.finished_at
    event = AuditEvent.objects.get(action="resource.current_site_changed")
    assert event.before["current_site"] == "east" and event.after["current_site"] == "west"
    assert event.after["kind"] == "switchover" and event.after["execution"] == execution.pk
    body = _api(client_for, users, resource)
    assert (body["current_site"], body["away_from_home"]) == ("west", True)
    assert body["primary_site"] == "east"  # the home site is configuration and did not move

    # monitoring now sees the DR side as primary: that matches the record, no reason
    _observed(resource, "standby", "primary")
    assert _api(client_for, users, resource)["status"]["reasons"] == []

    # (outside the anti-flapping window: the switchover finished an hour ago)
    hour_ago = timezone.now() - timedelta(hours=1)
    ExecutionRequest.objects.filter(pk=execution.request_id).update(
        started_at=hour_ago, finished_at=hour_ago
    )
    outcome, _ = _run(_failback(operator, approve, resource, sites), operator)
    assert outcome == "succeeded"
    resource.refresh_from_db()
    assert resource.current_site == sites["east"] and not resource.away_from_home
    assert AuditEvent.objects.filter(action="resource.current_site_changed").count() == 2
    # the observation from before the failback is not compared with the newer record
    assert _api(client_for, users, resource)["status"]["reasons"] == []
    assert verify_chain().ok


@pytest.mark.django_db
def test_failed_switchover_does_not_move(
    default_policies, script, approved_request, operator, make_resource
):
    resource = make_resource("ledger-db")
    script.results["roles_swapped"] = StepResult(ok=False, detail="roles not swapped")
    outcome, _ = _run(approved_request(resource=resource), operator)
    assert outcome == "failed"
    resource.refresh_from_db()
    assert resource.current_site_id is None and not resource.away_from_home
    assert not AuditEvent.objects.filter(action="resource.current_site_changed").exists()


@pytest.mark.django_db
def test_mismatched_observed_primary_gives_the_reason(make_resource, client_for, users):
    resource = make_resource("stock-db")
    # recorded at home, but monitoring sees the DR member as primary (moved outside the service)
    _observed(resource, "standby", "primary")
    status = _api(client_for, users, resource)["status"]
    assert status["state"] == "yellow" and status["visibility"] == "ok"
    (reason,) = status["reasons"]
    assert reason["code"] == "unexpected_primary_site"
    assert reason["message"] == (
        "monitoring sees the primary at west, but the recorded current site is east"
    )
    listed = client_for(users["viewer"]).get("/api/v1/resources/", {"status": "yellow"}).json()
    assert [r["name"] for r in listed["results"]] == ["stock-db"]
    summary = client_for(users["viewer"]).get("/api/v1/status/summary/").json()
    assert summary["state"]["yellow"] == 1


@pytest.mark.django_db
def test_recorded_move_with_home_observation_after_it_is_flagged(make_resource, client_for, users):
    resource = make_resource("cart-db")
    moved_at = timezone.now() - timedelta(seconds=60)
    services.resource_record_move(
        actor="worker", resource_id=resource.pk, site=resource.dr_site, kind="failover", at=moved_at
    )
    _observed(resource, "primary", "standby", at=moved_at - timedelta(seconds=1))
    assert _api(client_for, users, resource)["status"]["reasons"] == []  # older: not compared
    _observed(resource, "primary", "standby")  # newer: the primary is back at east
    codes = [r["code"] for r in _api(client_for, users, resource)["status"]["reasons"]]
    assert codes == ["unexpected_primary_site"]
    green = client_for(users["viewer"]).get("/api/v1/resources/", {"status": "green"}).json()
    assert green["count"] == 0


@pytest.mark.django_db
def test_configuration_save_keeps_the_current_site(make_resource, sites):
    resource = make_resource("billing-db")
    stale = Resource.objects.get(pk=resource.pk)
    services.resource_record_move(
        actor="worker", resource_id=resource.pk, site=sites["west"], kind="switchover", at=NOW
    )
    stale.owner = "someone-else"
    services.save_object(actor=None, instance=stale)
    resource.refresh_from_db()
    assert resource.current_site == sites["west"] and resource.owner == "someone-else"


@pytest.mark.django_db
def test_api_cannot_write_the_current_site(make_resource, sites, client_for, users):
    resource = make_resource("api-db")
    response = client_for(users["admin"]).patch(
        f"/api/v1/resources/{resource.pk}/",
        {"current_site": "west", "away_from_home": True, "owner": "x"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    resource.refresh_from_db()
    assert resource.current_site_id is None and resource.owner == "x"


@pytest.mark.django_db
def test_sites_cannot_be_changed_to_exclude_the_current_site(make_resource, sites):
    from django.core.exceptions import ValidationError

    resource = make_resource("moved-db")
    services.resource_record_move(
        actor="worker", resource_id=resource.pk, site=sites["west"], kind="failover", at=NOW
    )
    resource.refresh_from_db()
    resource.dr_site = Site.objects.create(name="tokyo", region="ap-1", role="dr")
    with pytest.raises(ValidationError) as err:
        services.save_object(actor=None, instance=resource)
    assert "currently at west" in str(err.value)


@pytest.mark.django_db
def test_move_to_a_site_that_is_not_the_resources_is_audited_not_recorded(make_resource):
    resource = make_resource("odd-db")
    tokyo = Site.objects.create(name="tokyo", region="ap-1", role="dr")
    services.resource_record_move(
        actor="worker", resource_id=resource.pk, site=tokyo, kind="failover", at=NOW
    )
    resource.refresh_from_db()
    assert resource.current_site_id is None
    assert AuditEvent.objects.filter(action="resource.current_site_not_recorded").exists()


# --- target validation -----------------------------------------------------------------------


def _request_body(resource, kind, target):
    return {
        "kind": kind,
        "resource": resource.pk,
        "target_site": target,
        "reason": "test",
        "change_ticket": "CHG0012345",
    }


@pytest.mark.django_db
def test_targets_follow_the_current_site(
    default_policies, make_resource, sites, make_user, client_for
):
    op = client_for(make_user("operator"))
    resource = make_resource("pay-db")
    # at home: failback refused (nothing to fail back); switchover to the DR site fine
    refused = op.post("/api/v1/requests/", _request_body(resource, "failback", "east"))
    assert refused.status_code == 400
    assert "already at its home site east" in str(refused.json()["target_site"])
    assert op.post("/api/v1/requests/", _request_body(resource, "switchover", "west")).status_code
    services.resource_record_move(
        actor="worker", resource_id=resource.pk, site=sites["west"], kind="switchover", at=NOW
    )
    # away: a switchover to the site that is already current is refused, naming the problem
    refused = op.post("/api/v1/requests/", _request_body(resource, "switchover", "west"))
    assert refused.status_code == 400
    message = " ".join(refused.json()["target_site"])
    assert "west is already its primary" in message and "request a failback" in message
    failover = op.post("/api/v1/requests/", _request_body(resource, "failover", "west"))
    assert failover.status_code == 400
    # a failback goes home from the current site, and only there
    assert (
        op.post("/api/v1/requests/", _request_body(resource, "failback", "east")).status_code == 201
    )
    assert (
        op.post("/api/v1/requests/", _request_body(resource, "failback", "west")).status_code == 400
    )


@pytest.mark.django_db
def test_failback_allowed_when_monitoring_sees_the_primary_away(
    default_policies, make_resource, make_user, client_for
):
    """Moved outside the service: the record says home, monitoring says west; going home is a
    failback, and a switchover to west (where monitoring sees the primary) is refused."""
    op = client_for(make_user("operator"))
    resource = make_resource("auto-failed-db")
    _observed(resource, "standby", "primary")
    assert (
        op.post("/api/v1/requests/", _request_body(resource, "failback", "east")).status_code == 201
    )
    refused = op.post("/api/v1/requests/", _request_body(resource, "switchover", "west"))
    assert refused.status_code == 400
    assert "as monitoring sees it" in " ".join(refused.json()["target_site"])


# --- admin -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_the_current_site(make_resource, sites, client, make_user):
    client.force_login(make_user("admin", username="adm"))
    home, away = make_resource("home-db"), make_resource("away-db")
    services.resource_record_move(
        actor="worker", resource_id=away.pk, site=sites["west"], kind="failover", at=NOW
    )
    listing = client.get("/admin/inventory/resource/").content.decode()
    assert "east (home)" in listing and "AWAY from east" in listing
    detail = client.get(f"/admin/inventory/resource/{away.pk}/change/").content.decode()
    assert "AWAY from east" in detail and "Next drill due" in detail
    assert client.get(f"/admin/inventory/resource/{home.pk}/change/").status_code == 200
