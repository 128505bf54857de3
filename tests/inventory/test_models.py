"""Inventory validation: the same rules refuse bad input in the admin, the API and services."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from inventory import connection_settings, services
from inventory.models import Resource, ResourceGroup


def _errors(resource: Resource) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        resource.full_clean()
    return info.value.message_dict


@pytest.mark.django_db
def test_dr_site_must_differ_from_primary(make_resource, sites):
    resource = make_resource()
    resource.dr_site = sites["east"]
    assert "dr_site" in _errors(resource)


@pytest.mark.django_db
@pytest.mark.parametrize(("yellow", "red", "ok"), [(30, 60, True), (60, 60, True), (61, 60, False)])
def test_yellow_threshold_not_above_red(make_resource, yellow, red, ok):
    resource = make_resource()
    resource.yellow_lag_seconds, resource.red_lag_seconds = yellow, red
    if ok:
        resource.full_clean()
    else:
        assert "yellow_lag_seconds" in _errors(resource)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("connection", "message"),
    [
        ({"primary_host": "a", "dr_host": "b", "bogus": 1}, "bogus: Unknown key"),
        ({"primary_host": "a", "dr_host": "b", "password": "x"}, "password: Secrets must not"),
        ({"primary_host": "a"}, "dr_host: This key is required"),
        ({"primary_host": "a", "dr_host": "b", "primary_port": "5432"}, "primary_port: Must be"),
        ({"primary_host": "a", "dr_host": "b", "dr_port": 70000}, "dr_port: Port must be"),
        ({"primary_host": "a", "dr_host": "b", "dr_port": True}, "dr_port: Must be"),
        ([], "connection: Connection settings must be a JSON object"),
    ],
)
def test_connection_settings_validated_per_platform(make_resource, connection, message):
    resource = make_resource()
    resource.connection = connection
    assert any(message in m for m in _errors(resource)["connection"])


def test_every_platform_has_a_schema_without_secret_keys():
    for platform, schema in connection_settings.SCHEMAS.items():
        assert schema, platform
        assert not any("password" in key or "token" in key for key in schema)


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["vault:kv/db/orders#monitor", "env:PG_CREDS", "lab/postgres"])
def test_secret_reference_accepts_references(make_resource, ref):
    resource = make_resource()
    resource.secret_ref = ref
    resource.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["hunter2 with spaces", "p@ss'word", "x" * 201])
def test_secret_reference_refuses_things_that_are_not_references(make_resource, ref):
    resource = make_resource()
    resource.secret_ref = ref
    assert "secret_ref" in _errors(resource)


@pytest.mark.django_db
def test_name_rules(make_resource):
    resource = make_resource()
    resource.name = "bad name; drop"
    assert "name" in _errors(resource)


@pytest.mark.django_db
def test_interval_comes_from_tier_unless_set(make_resource):
    assert make_resource(tier=1).interval_seconds == 15
    assert make_resource(tier=3).interval_seconds == 300
    assert make_resource(tier=3, collect_interval_seconds=7).interval_seconds == 7


@pytest.mark.django_db
def test_services_record_audit_with_before_and_after(make_user, make_resource):
    admin = make_user("admin")
    resource = make_resource()
    resource.owner = "team-new"
    services.save_object(actor=admin, instance=resource)
    event = AuditEvent.objects.filter(action="resource.updated").get()
    assert event.before["owner"] == "team-db" and event.after["owner"] == "team-new"
    assert event.actor_name == admin.username and event.object_name == resource.name
    # A save that changes nothing writes no event.
    services.save_object(actor=admin, instance=resource)
    assert AuditEvent.objects.filter(action="resource.updated").count() == 1
    assert resource.history.count() >= 2


@pytest.mark.django_db
def test_invalid_save_through_services_changes_nothing(make_user, make_resource, sites):
    admin = make_user("admin")
    resource = make_resource()
    before_events = AuditEvent.objects.count()
    resource.dr_site = sites["east"]
    with pytest.raises(ValidationError):
        services.save_object(actor=admin, instance=resource)
    resource.refresh_from_db()
    assert resource.dr_site == sites["west"]
    assert AuditEvent.objects.count() == before_events


@pytest.mark.django_db
def test_group_members_keep_order_and_audit_changes(make_user, make_resource):
    admin = make_user("admin")
    a, b, c = make_resource("a"), make_resource("b"), make_resource("c")
    group = services.save_object(actor=admin, instance=ResourceGroup(name="g", tier=1))
    services.group_set_members(actor=admin, group=group, resources=[c, a, b])
    from inventory.selectors import group_members

    assert [r.name for r in group_members(group)] == ["c", "a", "b"]
    event = AuditEvent.objects.get(action="resourcegroup.members_changed")
    assert event.after == {"members": ["c", "a", "b"]}


@pytest.mark.django_db
def test_delete_is_audited(make_user, sites):
    from inventory.models import Site

    admin = make_user("admin")
    site = services.save_object(actor=admin, instance=Site(name="spare", region="r", role="dr"))
    services.delete_object(actor=admin, instance=site)
    event = AuditEvent.objects.get(action="site.deleted")
    assert event.before["name"] == "spare" and event.after is None
