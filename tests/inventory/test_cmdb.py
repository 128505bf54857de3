"""CMDB sync: CSV/JSON exports through the command, a URL and the admin; dry runs change
nothing, bad rows name their line and stop everything, changes are audited, a re-run is a no-op."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditEvent
from inventory import cmdb
from inventory.models import Resource

HEADER = "name,owner,environment,tier,platform,primary_site,dr_site,connection\n"
PG = '"{""primary_host"": ""10.0.0.1"", ""dr_host"": ""10.0.0.2""}"'


@pytest.fixture
def inventory(make_resource):
    """Two resources with local configuration the sync must keep."""
    orders = make_resource(
        "orders-db", owner="team-a", tier=2, environment="staging", red_lag_seconds=90
    )
    billing = make_resource("billing-db", owner="team-b")
    return orders, billing


def run(path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("cmdb_sync", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path, text: str, name: str = "cmdb.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.django_db
def test_dry_run_shows_changes_and_writes_nothing(tmp_path, inventory):
    path = write(
        tmp_path,
        HEADER
        + "orders-db,team-orders,production,Tier 1,,,,\n"
        + "billing-db,team-b,production,1,,,,\n"
        + "ghost-db,team-x,production,3,,,,\n",
    )
    out, _ = run(path, "--dry-run")
    assert "~ line 2 orders-db: owner: 'team-a' -> 'team-orders'" in out
    assert "environment: 'staging' -> 'production'" in out and "tier: 2 -> 1" in out
    assert "line 4 ghost-db: not in the inventory (creation not allowed)" in out
    assert "1 to update, 0 to create, 1 unchanged, 1 not in the inventory" in out
    assert "Dry run: nothing was changed." in out
    assert Resource.objects.get(name="orders-db").owner == "team-a"
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_apply_changes_owned_fields_only_audited_as_cli_and_rerun_is_a_noop(tmp_path, inventory):
    orders, _ = inventory
    path = write(
        tmp_path,
        # The file's platform and sites differ: local configuration, reported and kept.
        HEADER + 'orders-db,team-orders,Production,1,mongodb,west,east,"{}"\n',
    )
    out, _ = run(path)
    assert "platform is 'postgres' here, 'mongodb' in the file: kept" in out
    assert "Applied: 1 updated, 0 created." in out
    orders.refresh_from_db()
    assert (orders.owner, orders.environment, orders.tier) == ("team-orders", "production", 1)
    assert orders.platform == "postgres" and orders.primary_site.name == "east"
    assert orders.red_lag_seconds == 90 and orders.secret_ref == "lab/postgres"
    assert orders.connection["primary_host"] == "127.0.0.1"
    event = AuditEvent.objects.get(action="resource.updated")
    assert (event.actor_name, event.context) == ("cmdb_sync", "cli")
    assert event.before["owner"] == "team-a" and event.after["owner"] == "team-orders"
    summary = AuditEvent.objects.get(action="cmdb.synced")
    assert summary.after["updated"] == ["orders-db"] and summary.after["source"] == "cmdb.csv"
    assert orders.history.count() == 2  # created by the fixture, updated by the sync

    events = AuditEvent.objects.count()
    out, _ = run(path)
    assert "Applied: 0 updated, 0 created." in out and "1 unchanged" in out
    assert AuditEvent.objects.count() == events and orders.history.count() == 2


BAD_FILES = [
    pytest.param(
        "a.csv",
        HEADER + "orders-db,t,production,1,oracle,,,\n",
        2,
        "unknown platform 'oracle'",
        id="platform",
    ),
    pytest.param(
        "a.csv", HEADER + "orders-db,t,production,4,,,,\n", 2, "invalid tier '4'", id="tier"
    ),
    pytest.param(
        "a.csv", HEADER + "orders-db,t,production,1,,mars,,\n", 2, "unknown site 'mars'", id="site"
    ),
    pytest.param(
        "a.csv",
        HEADER + "orders-db,t,prod-ish,1,,,,\n",
        2,
        "invalid environment 'prod-ish'",
        id="environment",
    ),
    pytest.param(
        "a.csv", "name,owner,tier\norders-db,t,1\n", 1, "missing column 'environment'", id="column"
    ),
    pytest.param(
        "a.csv",
        HEADER + "billing-db,t,production,1,,,,\norders-db,,production,1,,,,\n",
        3,
        "missing owner",
        id="empty-owner",
    ),
    pytest.param(
        "a.csv",
        HEADER + "billing-db,t,production,1,,,,\nbilling-db,u,production,1,,,,\n",
        3,
        "duplicate name 'billing-db' in the file (first on line 2)",
        id="duplicate",
    ),
    pytest.param(
        "a.json",
        '[\n  {"name": "billing-db", "owner": "t",\n   "tier": 1}, oops\n]',
        3,
        "bad JSON",
        id="json",
    ),
    pytest.param(
        "a.json",
        '{"resources": [\n {"name": "billing-db", "owner": "t", "environment": "test", "tier": 1},\n {"name": "orders-db", "owner": "t", "environment": "test", "tier": true}\n]}',
        3,
        "invalid tier True",
        id="json-tier",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "text", "line", "reason"), BAD_FILES)
def test_a_bad_row_is_reported_with_its_line_and_nothing_is_applied(
    tmp_path, inventory, name, text, line, reason
):
    path = write(tmp_path, text, name)
    with pytest.raises(CommandError) as caught:
        run(path)
    assert caught.value.returncode == 1
    plan = cmdb.preview(cmdb.read_source(str(path)), create=False)
    assert any(p.line == line and reason in p.reason for p in plan.errors), plan.errors
    # Other rows were valid (billing-db would change owner), yet nothing at all was applied.
    assert Resource.objects.get(name="billing-db").owner == "team-b"
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_json_export_with_line_numbers_and_multiline_csv(tmp_path, inventory):
    text = json.dumps(
        {
            "generated": "today",
            "resources": [
                {"Name": "orders-db", "owner": "team-j", "environment": "test", "tier": 3},
                {"name": "billing-db", "owner": "team-b", "environment": "production", "tier": "1"},
            ],
        },
        indent=2,
    )
    plan = cmdb.preview(cmdb.from_bytes(text.encode(), name="export"), create=False)
    assert plan.ok and [c.name for c in plan.changes] == ["orders-db"] and plan.unchanged == 1
    assert plan.changes[0].line == 4  # where the object starts
    csv_text = (
        HEADER.replace("connection", "note")
        + 'orders-db,"team\nsplit",test,1,,,,\nx-db,t,test,9,,,,\n'
    )
    plan = cmdb.preview(cmdb.from_bytes(csv_text.encode(), name="e.csv"), create=False)
    assert [(p.line, p.name) for p in plan.errors] == [(4, "x-db")]


@pytest.mark.django_db
def test_create_needs_valid_connection_settings_for_the_platform(tmp_path, inventory, sites):
    good = f"new-db,team-n,production,1,postgres,east,west,{PG}\n"
    bad = 'bad-db,team-n,production,1,mongodb,east,west,"{""hosts"": ""h1""}"\n'
    path = write(tmp_path, HEADER + good + bad)
    with pytest.raises(CommandError):
        run(path, "--create")
    plan = cmdb.preview(cmdb.read_source(str(path)), create=True)
    reasons = [p.reason for p in plan.errors if p.line == 3]
    assert any("connection: hosts: Must be of type list" in r for r in reasons), reasons
    assert any("replica_set: This key is required" in r for r in reasons)
    assert not Resource.objects.filter(name="new-db").exists()

    missing = write(tmp_path, HEADER + "other-db,t,production,1,postgres,east,,\n", "m.csv")
    plan = cmdb.preview(cmdb.read_source(str(missing)), create=True)
    assert "missing dr_site, connection (needed to create 'other-db')" in plan.errors[0].reason

    path = write(tmp_path, HEADER + good)
    out, _ = run(path, "--create")
    created = Resource.objects.get(name="new-db")
    assert (created.platform, created.dr_site.name, created.owner) == ("postgres", "west", "team-n")
    assert created.connection["dr_host"] == "10.0.0.2"
    assert AuditEvent.objects.get(action="resource.created").actor_name == "cmdb_sync"


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    content_type = "text/csv"
    delay = 0.0

    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/export.csv")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.end_headers()
        if self.delay:
            try:
                for byte in self.body:  # drips: every read is fast, the whole is slow
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(self.delay)
            except OSError:  # the client gave up, as it should
                pass
        else:
            self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_export() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_sync_from_a_url_with_limits(http_export, inventory, settings):
    base, handler = http_export
    handler.body = json.dumps(
        [{"name": "orders-db", "owner": "team-url", "environment": "staging", "tier": 2}]
    ).encode()
    handler.content_type = "application/json"
    out, _ = run(f"{base}/export?token=abc")
    assert "Applied: 1 updated" in out
    assert Resource.objects.get(name="orders-db").owner == "team-url"
    event = AuditEvent.objects.get(action="cmdb.synced")
    assert event.object_name == f"{base}/export"  # no query string: it may hold a credential

    with pytest.raises(cmdb.CmdbError, match="only http"):
        cmdb.read_source("file:///etc/passwd")
    with pytest.raises(cmdb.CmdbError, match="non-HTTP"):
        cmdb.read_source(f"{base}/redirect")
    settings.BC_CMDB_MAX_BYTES = 10
    with pytest.raises(CommandError) as caught:
        run(f"{base}/export")
    assert caught.value.returncode == 2 and "limit of 10 bytes" in str(caught.value)
    settings.BC_CMDB_MAX_BYTES = 10_000
    settings.BC_CMDB_TIMEOUT = 0.5
    handler.delay = 0.05
    started = time.monotonic()
    with pytest.raises(cmdb.CmdbError, match="took longer than 0.5 s"):
        cmdb.read_source(f"{base}/export")
    assert time.monotonic() - started < 3


@pytest.fixture
def admin_client_bc(client, make_user):
    user = make_user("admin", username="cmdb-admin")
    client.force_login(user)
    return client


def _upload(client, text: str, create: bool = False, name: str = "cmdb.csv"):
    url = reverse("admin:inventory_resource_cmdb_import")
    data = {"stage": "preview", "export": SimpleUploadedFile(name, text.encode(), "text/csv")}
    if create:
        data["create"] = "on"
    return client.post(url, data)


@pytest.mark.django_db
def test_admin_preview_then_confirm_applies_as_the_admin(admin_client_bc, inventory):
    changelist = admin_client_bc.get(reverse("admin:inventory_resource_changelist"))
    assert b"Import from CMDB" in changelist.content
    response = _upload(admin_client_bc, HEADER + "orders-db,team-web,staging,2,,,,\n")
    assert response.status_code == 200
    page = response.content.decode()
    assert "team-a" in page and "team-web" in page and "Apply these changes" in page
    assert Resource.objects.get(name="orders-db").owner == "team-a"  # a preview changes nothing
    fingerprint = response.context["fingerprint"]
    url = reverse("admin:inventory_resource_cmdb_import")
    response = admin_client_bc.post(url, {"stage": "apply", "fingerprint": fingerprint})
    assert response.status_code == 302
    assert Resource.objects.get(name="orders-db").owner == "team-web"
    event = AuditEvent.objects.get(action="resource.updated")
    assert (event.actor_name, event.context) == ("cmdb-admin", "web")


@pytest.mark.django_db
def test_admin_refuses_bad_files_and_stale_previews(admin_client_bc, inventory):
    response = _upload(admin_client_bc, HEADER + "orders-db,t,production,7,,,,\n")
    assert "invalid tier" in response.content.decode()
    assert "Apply these changes" not in response.content.decode()

    response = _upload(admin_client_bc, HEADER + "orders-db,team-web,staging,2,,,,\n")
    fingerprint = response.context["fingerprint"]
    orders = Resource.objects.get(name="orders-db")
    orders.owner = "team-changed-meanwhile"
    orders.save()
    url = reverse("admin:inventory_resource_cmdb_import")
    response = admin_client_bc.post(url, {"stage": "apply", "fingerprint": fingerprint})
    assert response.status_code == 200 and "changed since the preview" in response.content.decode()
    assert Resource.objects.get(name="orders-db").owner == "team-changed-meanwhile"
    assert not AuditEvent.objects.filter(action="resource.updated").exists()


@pytest.mark.django_db
def test_admin_import_needs_change_permission(client, make_user, inventory):
    client.force_login(make_user("auditor", username="aud"))
    url = reverse("admin:inventory_resource_cmdb_import")
    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_auditor_sees_the_export_but_not_the_import_link(client, make_user, inventory):
    client.force_login(make_user("auditor", username="aud2"))
    page = client.get(reverse("admin:inventory_resource_changelist"))
    assert page.status_code == 200
    assert b"Import from CMDB" not in page.content and b"Export for CMDB" in page.content


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_admin_export_built_by_import_export_reimports_as_a_noop(admin_client_bc, inventory, fmt):
    url = reverse("admin:inventory_resource_cmdb_export")
    response = admin_client_bc.get(url, {"format": fmt})
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'resources-cmdb.{fmt}"')
    text = response.content.decode()
    assert "orders-db" in text and "team-a" in text and "connection" not in text
    plan = cmdb.preview(cmdb.from_bytes(text.encode(), name=f"x.{fmt}"), create=False)
    assert plan.ok and not plan.changes and plan.unchanged == 2, plan.report_lines()
    assert admin_client_bc.get(url, {"format": "xml"}).status_code == 400
