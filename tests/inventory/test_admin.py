"""Admin pages load and save for each inventory model, through the audited services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from inventory.models import Resource, ResourceGroup, Site


@pytest.fixture
def admin_client_bc(client, make_user):
    user = make_user("admin", username="adm")
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Site, Resource, ResourceGroup])
def test_changelist_add_and_history_pages_load(admin_client_bc, make_resource, model):
    resource = make_resource()
    group = ResourceGroup.objects.create(name="grp", tier=1)
    obj = {Site: resource.primary_site, Resource: resource, ResourceGroup: group}[model]
    opts = model._meta
    for url in [
        reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        reverse(f"admin:{opts.app_label}_{opts.model_name}_add"),
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
        reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk]),
    ]:
        assert admin_client_bc.get(url).status_code == 200, url


@pytest.mark.django_db
def test_changelist_filters_and_search(admin_client_bc, make_resource):
    make_resource("orders-db", platform="postgres")
    url = reverse("admin:inventory_resource_changelist")
    assert b"orders-db" in admin_client_bc.get(url, {"q": "orders"}).content
    assert admin_client_bc.get(url, {"platform__exact": "mongodb"}).status_code == 200
    assert (
        admin_client_bc.get(
            url, {"tier__exact": "1", "environment__exact": "production"}
        ).status_code
        == 200
    )


@pytest.mark.django_db
def test_add_site_through_admin_is_audited(admin_client_bc):
    url = reverse("admin:inventory_site_add")
    response = admin_client_bc.post(url, {"name": "paris", "region": "eu-west-3", "role": "dr"})
    assert response.status_code == 302
    site = Site.objects.get(name="paris")
    event = AuditEvent.objects.get(action="site.created")
    assert event.object_id == str(site.pk) and event.actor_name == "adm"
    assert event.context == "web" and event.request_id
    assert site.history.first().history_user.username == "adm"


@pytest.mark.django_db
def test_admin_refuses_dr_equal_primary_with_field_error(admin_client_bc, sites):
    url = reverse("admin:inventory_resource_add")
    data = {
        "name": "bad",
        "platform": "postgres",
        "tier": 1,
        "environment": "production",
        "owner": "x",
        "primary_site": sites["east"].pk,
        "dr_site": sites["east"].pk,
        "connection": '{"primary_host": "a", "dr_host": "b"}',
        "secret_ref": "lab/pg",
        "rpo_target_seconds": 60,
        "yellow_lag_seconds": 90,
        "red_lag_seconds": 60,
        "freshness_seconds": 60,
        "timeout_seconds": 5,
        "heartbeat_column": "ts",
        "heartbeat_max_age_seconds": 60,
        "enabled": "on",
    }
    response = admin_client_bc.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "dr_site" in errors and "yellow_lag_seconds" in errors
    assert not Resource.objects.filter(name="bad").exists()


@pytest.mark.django_db
def test_group_membership_edit_in_admin_keeps_order(admin_client_bc, make_resource):
    a, b = make_resource("first"), make_resource("second")
    url = reverse("admin:inventory_resourcegroup_add")
    data = {
        "name": "grp",
        "tier": 1,
        "description": "",
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-resource": b.pk,
        "memberships-0-position": "1",
        "memberships-1-resource": a.pk,
        "memberships-1-position": "0",
    }
    response = admin_client_bc.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    group = ResourceGroup.objects.get(name="grp")
    assert list(
        group.memberships.order_by("position").values_list("resource__name", flat=True)
    ) == [
        "first",
        "second",
    ]
    assert AuditEvent.objects.filter(action="resourcegroup.members_changed").count() == 1


@pytest.mark.django_db
def test_audit_events_are_read_only_in_admin(admin_client_bc, make_resource):
    make_resource()
    event = AuditEvent.objects.first()
    assert admin_client_bc.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert admin_client_bc.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert (
        admin_client_bc.post(
            reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_non_staff_roles_cannot_use_admin(client, make_user):
    client.force_login(make_user("operator"))
    response = client.get(reverse("admin:inventory_resource_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]
