"""Routes: validation (invariant 8 included), audited and historied writes, the admin, and which
routes an event goes to."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from inventory.choices import Environment, Tier
from notifications import router, services
from notifications.choices import ENVIRONMENTS, TIERS
from notifications.models import Delivery, Route

pytestmark = pytest.mark.django_db


def _route(**fields):
    values = {"name": "r", "kinds": "*", "channel": "log"}
    values.update(fields)
    return Route(**values)


def test_choices_match_inventory():
    assert list(ENVIRONMENTS) == list(Environment.values)
    assert list(TIERS) == list(Tier.values)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"production_on_call": True, "environments": ["staging"]}, "environments"),
        ({"production_on_call": True, "environments": []}, "environments"),
        ({"production_on_call": True, "environments": ["production", "test"]}, "environments"),
        ({"environments": ["prod"]}, "environments"),
        ({"tiers": [4]}, "tiers"),
        ({"kinds": ""}, "kinds"),
        ({"kinds": "status.red, Status!"}, "kinds"),
        ({"kinds": "status.*.red"}, "kinds"),
        ({"channel": "pagerduty"}, "secret_ref"),
        ({"channel": "pagerduty", "secret_ref": "env:PD", "target": "abc"}, "target"),
        # A raw key or webhook URL pasted where the reference belongs is refused.
        (
            {"channel": "slack", "secret_ref": "https://hooks.slack.com/services/T/B/x"},
            "secret_ref",
        ),
        ({"channel": "pagerduty", "secret_ref": "0123456789abcdef0123456789abcdef"}, "secret_ref"),
        ({"channel": "email", "target": ""}, "target"),
        ({"channel": "email", "target": "ops@example.com, not-an-address"}, "target"),
        ({"channel": "gds", "target": ""}, "target"),
    ],
)
def test_invalid_routes_are_refused(fields, field):
    with pytest.raises(ValidationError) as info:
        _route(**fields).full_clean()
    assert field in info.value.message_dict


@pytest.mark.parametrize(
    "fields",
    [
        {
            "production_on_call": True,
            "environments": ["production"],
            "channel": "pagerduty",
            "secret_ref": "vault:bcservice/notify/pagerduty-db",
            "kinds": "status.*",
        },
        {"channel": "slack", "secret_ref": "env:SLACK_HOOK", "tiers": [3], "kinds": "status.red"},
        {"channel": "email", "target": "dba@example.com ops@example.com", "kinds": "request.*"},
        {"channel": "gds", "target": "database-alerts"},
    ],
)
def test_valid_routes(fields):
    _route(**fields).full_clean()


def test_route_writes_are_audited_with_history(make_user):
    admin = make_user("admin")
    route = services.route_save(actor=admin, route=_route(name="tier1-pd", kinds="status.*"))
    route.kinds = "status.red"
    services.route_save(actor=admin, route=route)
    services.route_delete(actor=admin, route=route)
    actions = list(
        AuditEvent.objects.filter(object_type="notifications.route").values_list(
            "action", "actor_name"
        )
    )
    assert actions == [
        ("notificationroute.created", admin.username),
        ("notificationroute.updated", admin.username),
        ("notificationroute.deleted", admin.username),
    ]
    updated = AuditEvent.objects.get(action="notificationroute.updated")
    assert (updated.before["kinds"], updated.after["kinds"]) == ("status.*", "status.red")
    assert Route.history.filter(name="tier1-pd").count() == 3
    assert {h.history_user_id for h in Route.history.all()} == {admin.pk}


def test_route_save_refuses_invalid_and_records_nothing():
    with pytest.raises(ValidationError):
        services.route_save(actor="t", route=_route(production_on_call=True, environments=["test"]))
    assert not Route.objects.exists() and not AuditEvent.objects.exists()


def test_admin_creates_a_route_through_the_service(client, make_user):
    admin = make_user("admin", username="route-admin")
    client.force_login(admin)
    response = client.post(
        "/admin/notifications/route/add/",
        {
            "name": "prod-pager",
            "enabled": "on",
            "kinds": "status.red, status.visibility_lost",
            "tiers": ["1"],
            "environments": ["production"],
            "channel": "pagerduty",
            "target": "",
            "secret_ref": "env:PD_KEY",
            "production_on_call": "on",
            "description": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    route = Route.objects.get(name="prod-pager")
    assert (route.tiers, route.environments, route.production_on_call) == (
        [1],
        ["production"],
        True,
    )
    assert AuditEvent.objects.filter(
        action="notificationroute.created", actor_name="route-admin"
    ).exists()
    # The form refuses a staging environment on an on-call route.
    response = client.post(
        f"/admin/notifications/route/{route.pk}/change/",
        {
            "name": "prod-pager",
            "enabled": "on",
            "kinds": "status.red",
            "environments": ["production", "staging"],
            "channel": "pagerduty",
            "secret_ref": "env:PD_KEY",
            "production_on_call": "on",
        },
    )
    assert response.status_code == 200 and b"production on-call route" in response.content
    assert Route.objects.get(pk=route.pk).environments == ["production"]


def test_auditor_sees_routes_but_cannot_change_them(client, make_user, make_route):
    make_route("seen")
    client.force_login(make_user("auditor"))
    assert client.get("/admin/notifications/route/").status_code == 200
    assert client.get("/admin/notifications/delivery/").status_code == 200
    assert client.post("/admin/notifications/route/add/", {"name": "x"}).status_code == 403


@pytest.mark.parametrize(
    "pattern, kind, expected",
    [
        ("*", "anything.at.all", True),
        ("status.red", "status.red", True),
        ("status.red", "status.recovered", False),
        ("status.*", "status.recovered", True),
        ("status.*", "statusx.red", False),
        ("request.*", "request.created", True),
    ],
)
def test_kind_patterns(pattern, kind, expected):
    assert router.kind_matches(pattern, kind) is expected


def test_matching_by_kind_tier_and_environment(make_route):
    pager = make_route(
        "pager",
        "pagerduty",
        kinds="status.*",
        tiers=[1],
        environments=["production"],
        production_on_call=True,
    )
    slack = make_route("slack", "slack", kinds="status.*", tiers=[3])
    everything = make_route("log", "log")
    disabled = make_route("off", "log", enabled=False)

    def names(**event):
        return [m.route.name for m in router.match(Route.objects.all(), **event)]

    assert names(kind="status.red", tier=1, environment="production") == ["log", "pager"]
    assert names(kind="status.red", tier=1, environment="staging") == ["log"]
    assert names(kind="status.red", tier=3, environment="staging") == ["log", "slack"]
    assert names(kind="request.created", tier=1, environment="production") == ["log"]
    assert disabled.name not in names(kind="x", tier=None, environment=None)
    assert pager and slack and everything


def test_invariant_8_a_non_production_event_never_reaches_an_on_call_route(
    make_route, pagerduty, deliver_all, status_change
):
    """Even a route forced past validation (environments emptied in the database) refuses a
    non-production event: at routing time, and again at delivery time."""
    pager = make_route(
        "pager", "pagerduty", kinds="*", environments=["production"], production_on_call=True
    )
    Route.objects.filter(pk=pager.pk).update(environments=[])  # behind the admin's back
    status_change(11, "red", "ok", "lag_red", environment="staging", tier=1)
    services.notify("breakglass.opened", subject="bg", tier=1, environment=None, payload={})
    refused = list(Delivery.objects.values_list("status", "last_error"))
    assert len(refused) == 2 and {s for s, _ in refused} == {"refused"}
    assert all("invariant 8" in e for _, e in refused)
    assert deliver_all() == [] and pagerduty.requests == []

    # A staging event routed to an ordinary route; before the worker sends it, an admin turns
    # the route into the production on-call route: the worker checks again and refuses.
    Route.objects.filter(pk=pager.pk).update(production_on_call=False, environments=[])
    status_change(12, "red", "ok", "lag_red", environment="staging")
    (pending,) = Delivery.objects.filter(status="pending")
    pager.refresh_from_db()
    pager.production_on_call, pager.environments = True, ["production"]
    services.route_save(actor="admin", route=pager)
    assert deliver_all() == ["refused"]
    assert pagerduty.requests == []
    assert "invariant 8" in Delivery.objects.get(pk=pending.pk).last_error
