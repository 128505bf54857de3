"""Degraded mode against a real outage: gunicorn serves the service from its own PostgreSQL
cluster, the cluster is stopped mid-test, and the service must keep answering (never a 500):
/healthz 200, /readyz 503, status reads from the last known copy marked stale (only to the
credential that saw it), every action refused with a 503 that says nothing was changed; after the
cluster is back, the refused action was indeed not applied and can simply be repeated."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.test import RequestFactory, override_settings

from bcservice import degraded

ROOT = Path(__file__).resolve().parents[2]
PG_CLUSTER = ROOT / "scripts" / "pg_cluster.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(
    base: str, path: str, *, token: str = "", method: str = "GET", body: Any = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class Service:
    """Own PostgreSQL cluster + migrated database + gunicorn, all on loopback."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pg_dir = base / "pg"
        self.pg_port = _free_port()
        self.web_port = _free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.db_url = f"postgres://postgres@127.0.0.1:{self.pg_port}/bcservice"
        self.env = {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "BC_SNAPSHOT_DIR": str(base / "snapshots"),
            "BC_DEGRADED_RECHECK_SECONDS": "1",
            "BC_LAB_DIR": str(base / "lab"),
            "BC_AUDIT_CHECKPOINT_DIR": str(base / "checkpoints"),
        }
        self.web: subprocess.Popen | None = None
        self.log = (base / "web.log").open("w")  # gunicorn's log, shown when a check fails

    def pg(self, action: str) -> None:
        args = [str(PG_CLUSTER), action, str(self.pg_dir)]
        subprocess.run(
            [*args, str(self.pg_port)] if action == "start" else args,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def start(self) -> None:
        self.pg("start")
        with psycopg.connect(
            f"host=127.0.0.1 port={self.pg_port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE bcservice")
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("demo_data")
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "bcservice.wsgi",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                "1",
                "--timeout",
                "60",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if _call(self.url, "/healthz")[0] == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError("gunicorn did not answer /healthz")

    def log_tail(self) -> str:
        return (self.base / "web.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.web is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.web.pid, 15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.web.wait(20)
        self.pg("stop")
        self.log.close()


@pytest.fixture
def service() -> Iterator[Service]:
    if not Path("/usr/lib/postgresql").is_dir():
        pytest.skip("PostgreSQL server binaries are not installed")
    base = Path(tempfile.mkdtemp(prefix="bc-degraded-", dir="/tmp"))
    base.chmod(0o755)  # the cluster runs as the postgres user when the tests run as root
    svc = Service(base)
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(base, ignore_errors=True)


def _wait_for(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


@pytest.mark.integration
def test_database_outage_degrades_without_a_500_and_loses_nothing(service):
    admin = service.manage("bc_user", "h4-admin", "--roles", "admin", "--token").split()[-1]
    viewer = service.manage("bc_user", "h4-viewer", "--roles", "viewer", "--token").split()[-1]
    base = service.url

    status, _, live = _call(base, "/api/v1/status/summary/", token=admin)
    assert status == 200
    live_summary = json.loads(live)
    status, _, page = _call(base, "/api/v1/resources/", token=admin)
    assert status == 200 and "degraded" not in json.loads(page)

    service.pg("stop")  # the outage

    assert _call(base, "/healthz")[0] == 200
    status, _, body = _call(base, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["database"].startswith("unreachable")

    # The last known status, marked stale, to the credential that saw it.
    status, headers, body = _call(base, "/api/v1/status/summary/", token=admin)
    assert status == 200, service.log_tail()
    stale = json.loads(body)
    assert headers["X-BC-Degraded"] == "database-unreachable" and "Stale" in headers["Warning"]
    assert (
        stale["degraded"]["stale"] is True and stale["degraded"]["reason"] == "database_unreachable"
    )
    assert {k: v for k, v in stale.items() if k != "degraded"} == live_summary

    # Nobody else gets it: another credential, no credential, a page never served.
    for token, path in (
        (viewer, "/api/v1/status/summary/"),
        ("", "/api/v1/status/summary/"),
        (admin, "/api/v1/groups/"),
    ):
        status, headers, body = _call(base, path, token=token)
        assert status == 503, (token, path, body)
        assert json.loads(body)["code"] == "service_degraded" and "Retry-After" in headers

    # Every action refused, with a reason, nothing changed.
    new_site = {"name": "outage-site", "region": "eu-west", "role": "dr"}
    status, _, body = _call(base, "/api/v1/sites/", token=admin, method="POST", body=new_site)
    assert status == 503, body
    refused = json.loads(body)
    assert refused["outcome"] == "not_applied" and "nothing was changed" in refused["detail"]
    status, _, body = _call(base, "/api/v1/sites/1/", token=admin, method="DELETE")
    assert status == 503 and json.loads(body)["outcome"] == "not_applied"

    # Admin pages and metrics: a page that says so, not a server error.
    status, _, body = _call(base, "/admin/", Accept="text/html")
    assert status == 503 and b"Service degraded" in body
    status, _, body = _call(base, "/metrics")
    assert status == 200 and b"bc_store_up 0.0" in body

    service.pg("start")  # back
    _wait_for(lambda: _call(base, "/readyz")[0] == 200)
    time.sleep(1.2)  # BC_DEGRADED_RECHECK_SECONDS: the next request tries the database again
    status, headers, body = _call(base, "/api/v1/status/summary/", token=admin)
    assert status == 200 and "X-BC-Degraded" not in headers, service.log_tail()
    assert "degraded" not in json.loads(body)
    assert "degraded mode over" in service.log_tail()

    # Nothing lost: the refused action was not half-applied, and repeating it works.
    status, _, body = _call(base, "/api/v1/sites/?name=outage-site", token=admin)
    assert all(s["name"] != "outage-site" for s in json.loads(body)["results"])
    status, _, body = _call(base, "/api/v1/sites/", token=admin, method="POST", body=new_site)
    assert status == 201, body
    assert "intact" in service.manage("audit_verify", "--no-checkpoints")


# --- the last-known copies, without servers -------------------------------------------------


def test_a_copy_is_bound_to_credential_and_url_and_expires(tmp_path):
    factory = RequestFactory()
    with override_settings(BC_SNAPSHOT_DIR=tmp_path, BC_DEGRADED_SNAPSHOT_MAX_AGE=60):
        mine = factory.get("/api/v1/resources/?page=2", HTTP_AUTHORIZATION="Token aaa")
        other = factory.get("/api/v1/resources/?page=2", HTTP_AUTHORIZATION="Token bbb")
        page1 = factory.get("/api/v1/resources/", HTTP_AUTHORIZATION="Token aaa")
        assert len({degraded.snapshot_key(r) for r in (mine, other, page1)}) == 3
        assert degraded.snapshot_key(factory.get("/api/v1/resources/")) is None  # no credential
        actions = factory.get("/api/v1/requests/", HTTP_AUTHORIZATION="Token aaa")
        assert degraded.snapshot_key(actions) is None  # not a status read

        from django.http import JsonResponse

        key = degraded.snapshot_key(mine)
        degraded.save_snapshot(key, JsonResponse({"count": 1, "results": [{"name": "db"}]}))
        assert "aaa" not in "".join(p.name + p.read_text() for p in tmp_path.iterdir())
        response = degraded.degraded_response(mine, during=False)
        assert response.status_code == 200
        assert json.loads(response.content)["results"] == [{"name": "db"}]
        assert degraded.degraded_response(other, during=False).status_code == 503

        record = tmp_path / f"{key}.json"
        data = json.loads(record.read_text())
        data["saved_at"] -= 61
        record.write_text(json.dumps(data))
        assert degraded.degraded_response(mine, during=False).status_code == 503  # too old


def test_an_action_interrupted_after_writing_is_reported_unconfirmed():
    request = RequestFactory().post("/api/v1/sites/")
    response = degraded.degraded_response(request, during=True)
    body = json.loads(response.content)
    assert response.status_code == 503 and body["outcome"] == "unconfirmed"
    assert "check the object's state" in body["detail"]
