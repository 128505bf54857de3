"""Break-glass: who may open a grant, its bounds, what it waives, its audit, notification and
review afterwards."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from approvals import services
from approvals.exceptions import ApprovalRefused, RequestNotStartable, VoteConflict
from approvals.models import BreakGlassGrant
from audit.models import AuditEvent
from inventory.models import GroupMembership, ResourceGroup

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
URL = "/api/v1/breakglass/"


def _open(actor, resource=None, group=None, minutes=30, reason="primary DC on fire"):
    return services.breakglass_open(
        actor=actor, resource=resource, group=group, minutes=minutes, reason=reason
    )


@pytest.mark.django_db
def test_only_people_in_the_list_may_open(people, resource):
    with pytest.raises(ApprovalRefused) as err:
        _open(people["op"], resource)
    assert err.value.code == "not_eligible"
    assert not BreakGlassGrant.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["viewer", "auditor", "it"])
def test_list_membership_alone_is_not_enough_without_an_acting_role(people, resource, who):
    from approvals.models import BreakGlassEligibility

    BreakGlassEligibility.objects.create(user=people[who])
    with pytest.raises(ApprovalRefused):
        _open(people[who], resource)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reason": "   "}, "reason"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 241}, "minutes"),
        ({"minutes": 10**9}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"resource": None}, "scope"),
    ],
)
def test_bounds(eligible, resource, kwargs, field):
    values = {"resource": resource, **kwargs}
    with pytest.raises(ValidationError) as err:
        _open(eligible, **values)
    assert field in err.value.message_dict


@pytest.mark.django_db
def test_configured_maximum(eligible, resource, settings):
    settings.BC_BREAKGLASS_MAX_MINUTES = 15
    with pytest.raises(ValidationError):
        _open(eligible, resource, minutes=16)
    assert _open(eligible, resource, minutes=15).minutes == 15


@pytest.mark.django_db
def test_open_is_audited_and_notifies(
    eligible, resource, caplog, django_capture_on_commit_callbacks
):
    with (
        caplog.at_level(logging.INFO, logger="notifications"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        grant = _open(eligible, resource)
    event = AuditEvent.objects.get(action="breakglass.opened")
    assert event.object_id == str(grant.pk) and event.after["reason"] == "primary DC on fire"
    (record,) = [r for r in caplog.records if r.name == "notifications"]
    assert record.notification_kind == "breakglass.opened"
    assert record.tier == 1 and record.environment == "production"
    assert record.payload["grant"] == grant.pk and record.resource_id == resource.pk


@pytest.mark.django_db
def test_active_grant_waives_approvals_for_its_grantee(make_request, eligible, people, resource):
    request = make_request()  # pending, no approvals
    grant = _open(eligible, resource)
    services.request_check_startable(request, actor=eligible, now=timezone.now())
    # someone else cannot ride on the grant
    with pytest.raises(RequestNotStartable) as err:
        services.request_check_startable(request, actor=people["op2"], now=timezone.now())
    assert err.value.code == "not_approved"
    services.request_mark_running(request, actor=eligible)
    request.refresh_from_db()
    assert request.state == "running" and request.breakglass_grant == grant
    event = AuditEvent.objects.get(action="request.running")
    assert event.after["basis"] == "breakglass" and event.after["breakglass_grant"] == grant.pk


@pytest.mark.django_db
def test_expired_grant_waives_nothing(make_request, eligible, resource):
    with time_machine.travel(T0, tick=False) as clock:
        request = make_request()
        _open(eligible, resource, minutes=30)
        clock.move_to(T0 + timedelta(minutes=30))
        with pytest.raises(RequestNotStartable) as err:
            services.request_check_startable(request, actor=eligible, now=timezone.now())
    assert err.value.code == "not_approved"


@pytest.mark.django_db
def test_grant_on_another_scope_waives_nothing(make_request, make_resource, eligible):
    request = make_request()
    _open(eligible, make_resource("other-db"))
    with pytest.raises(RequestNotStartable):
        services.request_check_startable(request, actor=eligible, now=timezone.now())


@pytest.mark.django_db
def test_grant_on_a_group_covers_its_members_only(make_request, make_resource, eligible, resource):
    group = ResourceGroup.objects.create(name="orders", tier=1)
    GroupMembership.objects.create(group=group, resource=resource, position=0)
    _open(eligible, group=group)
    services.request_check_startable(make_request(), actor=eligible, now=timezone.now())
    outside = make_request(resource=make_resource("not-in-group"))
    with pytest.raises(RequestNotStartable):
        services.request_check_startable(outside, actor=eligible, now=timezone.now())


@pytest.mark.django_db
def test_grant_does_not_revive_terminal_requests(make_request, eligible, resource):
    request = make_request()
    services.request_cancel(request, actor=eligible)
    _open(eligible, resource)
    with pytest.raises(RequestNotStartable) as err:
        services.request_check_startable(request, actor=eligible, now=timezone.now())
    assert err.value.code == "state"


@pytest.mark.django_db
def test_review_after_the_grant_ends(eligible, people, resource, client_for):
    with time_machine.travel(T0, tick=False) as clock:
        grant = _open(eligible, resource, minutes=20)
        with pytest.raises(VoteConflict) as err:
            services.breakglass_review(grant, actor=people["it"], comment="checked")
        assert err.value.code == "still_active"
        clock.move_to(T0 + timedelta(minutes=21))
        listing = client_for(people["it"]).get(URL, {"needs_review": "1"}).json()
        assert [g["id"] for g in listing["results"]] == [grant.pk]
        with pytest.raises(ApprovalRefused):
            services.breakglass_review(grant, actor=people["op2"], comment="x")  # not approver
        with pytest.raises(ValidationError):
            services.breakglass_review(grant, actor=people["it"], comment="")
        services.breakglass_review(grant, actor=people["it"], comment="steps match the runbook")
        with pytest.raises(VoteConflict):
            services.breakglass_review(grant, actor=people["biz"], comment="again")
        listing = client_for(people["it"]).get(URL, {"needs_review": "1"}).json()
    assert listing["results"] == []
    grant.refresh_from_db()
    assert grant.reviewed_by == people["it"] and grant.reviewed_at == T0 + timedelta(minutes=21)
    assert AuditEvent.objects.filter(action="breakglass.reviewed").exists()


@pytest.mark.django_db
def test_grantee_cannot_review_own_grant(make_user, resource):
    from approvals.models import BreakGlassEligibility

    dba = make_user("operator", "approver_it", username="dba")
    BreakGlassEligibility.objects.create(user=dba)
    with time_machine.travel(T0, tick=False) as clock:
        grant = _open(dba, resource, minutes=5)
        clock.move_to(T0 + timedelta(minutes=6))
        with pytest.raises(ApprovalRefused) as err:
            services.breakglass_review(grant, actor=dba, comment="all fine")
    assert err.value.code == "grantee"


@pytest.mark.django_db
def test_close_ends_the_grant_now(eligible, people, resource):
    grant = _open(eligible, resource, minutes=60)
    with pytest.raises(ApprovalRefused):
        services.breakglass_close(grant, actor=people["op2"])
    services.breakglass_close(grant, actor=eligible)
    grant.refresh_from_db()
    assert grant.closed_by == eligible and not grant.is_active(timezone.now())
    with pytest.raises(VoteConflict):
        services.breakglass_close(grant, actor=people["admin"])
    assert AuditEvent.objects.filter(action="breakglass.closed").exists()
