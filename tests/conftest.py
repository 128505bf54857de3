"""Shared fixtures: a user per role, API clients, and small inventory factories.

Tests that need real concurrency or database triggers use ``transactional_db`` and are marked
``postgres_only``: on SQLite the append-only trigger would refuse Django's table flush.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from bcservice.roles import ALL_ROLES
from bcservice.services import user_set_roles

_counter = itertools.count(1)

# Everything the service writes under var/ by default (signing key, exported checkpoints,
# snapshots, SQLite file) goes to a directory of this run, also from the web servers, workers
# and commands the tests start: they inherit the environment. Left in the checkout's var/, a
# test's checkpoint ("seq 54 was signed") made the demo started afterwards report its own chain
# as cut off.
_OWN_VAR_DIR = "BC_VAR_DIR" not in os.environ
_TEST_VAR_DIR = Path(os.environ.setdefault("BC_VAR_DIR", tempfile.mkdtemp(prefix="bc-test-var-")))


def pytest_configure(config: Any) -> None:
    from django.conf import settings

    # The settings were loaded before this file; this process follows the same directory.
    settings.BC_VAR_DIR = _TEST_VAR_DIR

    # Password hashing at production strength costs ~0.5 s per user; tests make hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_unconfigure(config: Any) -> None:
    if _OWN_VAR_DIR:
        shutil.rmtree(_TEST_VAR_DIR, ignore_errors=True)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL as the state store (DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _own_state_dirs(settings: Any, tmp_path_factory: Any) -> None:
    """Exported audit checkpoints and degraded-mode snapshots go to a directory of each test's
    own: left in the shared var/, one test's checkpoint (say, "seq 54 was signed") would make
    the next test's fresh chain look cut off."""
    base = tmp_path_factory.mktemp("state")
    settings.BC_AUDIT_CHECKPOINT_DIR = str(base / "checkpoints")
    settings.BC_SNAPSHOT_DIR = base / "snapshots"


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def make_user(db) -> Callable[..., Any]:
    def make(*roles: str, username: str | None = None, password: str = "pw-Secret-123") -> Any:
        name = username or f"{'_'.join(roles) or 'norole'}{next(_counter)}"
        user, _ = user_set_roles(actor=None, username=name, roles=list(roles), password=password)
        return user

    return make


@pytest.fixture
def users(make_user) -> dict[str, Any]:
    """One user per role, plus ``norole`` (authenticated, no role)."""
    made = {role: make_user(role, username=f"u_{role}") for role in ALL_ROLES}
    made["norole"] = make_user(username="u_norole")
    return made


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    def make(user: Any | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def sites(db) -> dict[str, Any]:
    from inventory.models import Site

    return {
        "east": Site.objects.create(name="east", region="eu-west-1", role="primary"),
        "west": Site.objects.create(name="west", region="eu-central-1", role="dr"),
    }


PG_CONNECTION = {
    "primary_host": "127.0.0.1",
    "primary_port": 5432,
    "dr_host": "127.0.0.1",
    "dr_port": 5433,
}


@pytest.fixture
def make_resource(sites) -> Callable[..., Any]:
    from inventory.models import Resource

    def make(name: str | None = None, **fields: Any) -> Any:
        values = {
            "name": name or f"res-{next(_counter)}",
            "platform": "postgres",
            "tier": 1,
            "environment": "production",
            "owner": "team-db",
            "primary_site": sites["east"],
            "dr_site": sites["west"],
            "connection": dict(PG_CONNECTION),
            "secret_ref": "lab/postgres",
        }
        values.update(fields)
        resource = Resource(**values)
        resource.full_clean()
        resource.save()
        return resource

    return make


@pytest.fixture
def approve(make_user) -> Callable[[Any], Any]:
    """Approve a request with an IT and a business approver (enough for every default policy)."""
    from approvals import services as approvals

    def do(request: Any) -> Any:
        for role in ("approver_it", "approver_business"):
            request.refresh_from_db()
            if request.state == "approved":
                break
            approvals.request_approve(request, actor=make_user(role), comment="ok")
        request.refresh_from_db()
        assert request.state == "approved", request.state
        return request

    return do
