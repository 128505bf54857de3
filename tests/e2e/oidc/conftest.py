"""Browser SSO tests: pytest-django's live server, the loopback OpenID provider, and Debian's
Chromium driven by Playwright's sync API (``executable_path=/usr/bin/chromium``; never
``playwright install``).

Missing node/npm or Chromium fails the test when BC_REQUIRE_E2E=1 (CI) and skips it otherwise.

Two frictions with a live server, handled here:
- Playwright's sync API keeps an event loop in the test's thread, which makes Django refuse
  ORM calls from the test ("async context"); DJANGO_ALLOW_ASYNC_UNSAFE lifts that for this
  module only, and Playwright is stopped when the module ends (see ``chromium``).
- The live server needs ``transactional_db``, whose teardown empties every table. On SQLite that
  DELETE hits the audit table's append-only trigger (PostgreSQL's TRUNCATE does not), so on
  SQLite the triggers are lifted for that flush and put back right after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.identity.idp import IdPUnavailable, LoopbackIdP, start_idp, unavailable

CHROMIUM = os.environ.get("BC_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking"]

_db_blocker: list[Any] = []  # the session's django_db_blocker, for the teardown hook below


@pytest.fixture(scope="session")
def oidc_idp(tmp_path_factory) -> Iterator[LoopbackIdP]:
    try:
        idp = start_idp(tmp_path_factory.mktemp("oidc-idp-e2e"))
    except IdPUnavailable as exc:
        unavailable(str(exc))
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def chromium(request) -> Iterator[Any]:
    """A headless Chromium for this module; Playwright is stopped when the module ends.

    Playwright's sync API leaves its event loop marked as running in this thread while it is
    alive, and Django then refuses ORM calls here ("async context"), so for this module only
    DJANGO_ALLOW_ASYNC_UNSAFE is set; stopping Playwright afterwards lets later tests run as
    usual (a session-wide instance would break every later database test).
    """
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as env:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        owned = None
        try:
            owned = sync_playwright().start()
            playwright = owned
        except PlaywrightError:
            # pytest-playwright's session instance is already running in this thread: share it.
            playwright = request.getfixturevalue("playwright")
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
            )
        except Exception as exc:  # any launch failure means "no usable browser here"
            if owned is not None:
                owned.stop()
            unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
        yield browser
        browser.close()
        if owned is not None:
            owned.stop()


@pytest.fixture
def sso_live(chromium, live_server, oidc_idp, settings, django_db_blocker) -> Iterator[Any]:
    """The live server with OIDC pointed at the loopback IdP."""
    from bcservice.auth import oidc

    oidc_idp.allow_redirect(f"{live_server.url}/oidc/callback/")
    oidc_idp.configure(settings)
    oidc._discovery_cache.clear()
    _db_blocker[:] = [django_db_blocker]
    yield live_server
    _lift_audit_triggers(django_db_blocker)  # before transactional_db's flush


def _audit_trigger_sql() -> tuple[list[str], list[str]]:
    import importlib

    module = importlib.import_module("audit.migrations.0002_append_only_triggers")
    return module.SQLITE_UP, module.SQLITE_DOWN


def _lift_audit_triggers(blocker: Any) -> None:
    if connection.vendor != "sqlite":
        return
    with blocker.unblock(), connection.cursor() as cursor:
        for statement in _audit_trigger_sql()[1]:
            cursor.execute(statement)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> Iterator[None]:
    yield  # every fixture is torn down now, the transactional flush included
    if "sso_live" not in getattr(item, "fixturenames", ()) or not _db_blocker:
        return
    if nextitem is None:
        return  # the session is over and the test database gone: nothing to restore
    if connection.vendor != "sqlite":
        return
    with _db_blocker[0].unblock(), connection.cursor() as cursor:
        for statement in _audit_trigger_sql()[0]:
            cursor.execute(statement)
