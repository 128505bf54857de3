"""Admin monitoring surfaces: status column, status board (page and htmx partial), test connection.

Test connection uses a fake connector (``registry.get_connector`` replaced): this checks the
admin wiring and that nothing is saved, not a platform.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from connectors import registry
from connectors.contract import Connector, Observation, Outcome, Replication, Role, SideObservation
from inventory.models import ObservationSample, ResourceStatus

pytestmark = pytest.mark.django_db
BOARD = "/admin/inventory/resourcestatus/"


@pytest.fixture
def admin_client(users):
    client = Client()
    client.force_login(users["admin"])
    return client


@pytest.fixture
def board_data(make_resource):
    now = timezone.now()
    ok = make_resource("ok-db")
    ResourceStatus.objects.create(
        resource=ok, state="green", visibility="ok", observed_at=now, lag_seconds=0.3
    )
    down = make_resource("down-db")
    ResourceStatus.objects.create(
        resource=down,
        state="red",
        visibility="lost",
        reasons=[{"code": "dr_unreachable", "message": "DR side unreachable: refused"}],
        observed_at=now - timedelta(seconds=95),
        lag_seconds=2.5,
    )
    make_resource("new-db")
    return ok, down


def test_status_board_page_and_partial(admin_client, board_data):
    page = admin_client.get(BOARD)
    assert page.status_code == 200
    html = page.content.decode()
    assert "htmx" in html and 'hx-trigger="every 5s"' in html and "<html" in html
    assert html.index("down-db") < html.index("ok-db")  # worst first
    assert "dr_unreachable" in html and "last known" in html and "2.5 s" in html
    assert "RED" in html and "GREEN" in html  # state as text, not only colour

    partial = admin_client.get(BOARD, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    body = partial.content.decode()
    assert "<html" not in body
    assert 'id="status-board"' in body and "never" in body


def test_status_board_is_read_only_and_staff_only(admin_client, users, board_data):
    assert admin_client.get(BOARD + "add/").status_code == 403
    auditor = Client()
    auditor.force_login(users["auditor"])
    assert auditor.get(BOARD).status_code == 200
    viewer = Client()
    viewer.force_login(users["viewer"])
    assert viewer.get(BOARD).status_code == 302  # not staff: to the login page


def test_status_column_on_resource_list(admin_client, board_data):
    html = admin_client.get("/admin/inventory/resource/").content.decode()
    assert "bc-badge bc-red" in html and "visibility lost" in html and "Status board" in html


class SeeingConnector(Connector):
    platform = "postgres"

    def capabilities(self, target=None):
        return {}

    def observe(self, target):
        password = target.credentials("monitor")["password"]
        return Observation(
            observed_at=timezone.now(),
            primary=SideObservation("primary", "db1:5432", role=Role.PRIMARY),
            dr=SideObservation(
                "dr", "db2:5432", outcome=Outcome.AUTH_FAILED, error=f"bad pw {password}"
            ),
            replication=Replication.UNKNOWN,
            raw={"dsn": f"postgresql://mon:{password}@db2/x"},
        )


@pytest.fixture
def testable(make_resource, monkeypatch):
    monkeypatch.setattr(registry, "get_connector", lambda platform: SeeingConnector())
    monkeypatch.setenv("BC_ADMIN_TEST", json.dumps({"username": "mon", "password": "Adm1n-S3cret"}))
    return make_resource("probe-db", secret_ref="env:BC_ADMIN_TEST")


def test_test_connection_shows_what_was_seen_and_saves_nothing(admin_client, testable):
    url = f"/admin/inventory/resource/{testable.pk}/test-connection/"
    assert (
        "Test connection"
        in admin_client.get(f"/admin/inventory/resource/{testable.pk}/change/").content.decode()
    )
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Connect and observe now" in confirm.content.decode()
    events_before = AuditEvent.objects.count()
    result = admin_client.post(url)
    html = result.content.decode()
    assert result.status_code == 200
    assert "dr_auth_failed" in html and "db2:5432" in html
    assert "Adm1n-S3cret" not in html
    assert not ResourceStatus.objects.exists() and not ObservationSample.objects.exists()
    assert AuditEvent.objects.count() == events_before


def test_test_connection_action(admin_client, testable):
    response = admin_client.post(
        "/admin/inventory/resource/",
        {"action": "test_connection_action", "_selected_action": [testable.pk]},
    )
    assert response.status_code == 200
    assert "dr_auth_failed" in response.content.decode()


def test_test_connection_needs_change_permission(users, testable):
    auditor = Client()
    auditor.force_login(users["auditor"])
    url = f"/admin/inventory/resource/{testable.pk}/test-connection/"
    assert auditor.post(url).status_code == 403


def test_status_board_caps_rows_worst_first(admin_client, board_data, monkeypatch):
    from inventory import admin as inventory_admin

    monkeypatch.setattr(inventory_admin, "BOARD_MAX_ROWS", 2)
    html = admin_client.get(BOARD).content.decode()
    assert "down-db" in html and "new-db" in html and "ok-db" not in html
    assert "1 more, all better off" in html
