"""Degraded mode: what the web service does while its own database is unreachable.

- ``/healthz`` keeps answering 200 (the process is alive; restarting it would not help), ``/readyz``
  answers 503 (take the replica out of the load balancer) and ``/metrics`` reports
  ``bc_store_up 0``.
- Every action (any method but GET/HEAD/OPTIONS) is refused with HTTP 503 and a JSON body that says
  why and that nothing was changed, never a 500: the caller knows the action did not happen and
  can repeat it later, so nothing is lost silently.
- Reads of status (``BC_DEGRADED_SNAPSHOT_PATHS``) are answered from the last copy this replica
  served *to the same credential* (session cookie or ``Authorization`` header), marked stale in
  headers and, for JSON objects, in a ``degraded`` member; older than
  ``BC_DEGRADED_SNAPSHOT_MAX_AGE`` seconds, or never seen, they get 503 too. The credential cannot
  be checked without the database, so a copy goes back only to whoever presented that credential
  when it was made: nobody sees more than they were shown (docs/operations.md).

Detection: a connection-level database error (``OperationalError``/``InterfaceError``) in a view,
confirmed by a fresh connection attempt (a statement timeout is not an outage). Once confirmed,
requests are answered without touching the database for ``BC_DEGRADED_RECHECK_SECONDS``; then the
next request tries again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger("bcservice.degraded")

DB_ERRORS = (OperationalError, InterfaceError)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")
DEFAULT_SNAPSHOT_PATHS = r"^/api/v1/(status/|resources/|groups/|sites/|me/$)"
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024  # a bigger answer is not kept (a page of the list is)
REFUSED = (
    "The service's own database is unreachable, so this {method} was refused and nothing was "
    "changed. Repeat it when /readyz answers 200."
)
UNCONFIRMED = (
    "The service's own database became unreachable while this {method} was being handled. "
    "Its change was not confirmed: check the object's state before repeating it."
)
NO_SNAPSHOT = (
    "The service's own database is unreachable and no recent copy of this page was served to "
    "you by this instance. Try again when /readyz answers 200."
)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class _Breaker:
    """Whether the store was recently found unreachable (per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.checked_at = 0.0

    def is_down(self) -> bool:
        recheck = float(_setting("BC_DEGRADED_RECHECK_SECONDS", 5))
        with self._lock:
            return self.down_since is not None and time.monotonic() - self.checked_at < recheck

    def mark_down(self) -> None:
        with self._lock:
            if self.down_since is None:
                self.down_since = time.time()
                log.error("degraded mode: the service's own database is unreachable")
            self.checked_at = time.monotonic()

    def mark_up(self) -> None:
        with self._lock:
            if self.down_since is not None:
                log.warning(
                    "degraded mode over: database reachable again after %.0f s",
                    time.time() - self.down_since,
                )
            self.down_since = None


breaker = _Breaker()


def store_reachable() -> bool:
    """A new, separate connection and ``SELECT 1``: tells an outage from an error of one
    statement, without touching the request's own connection (or its transaction)."""
    probe = connection.copy()
    if probe.vendor == "postgresql":
        timeout = int(_setting("BC_DEGRADED_PROBE_TIMEOUT", 3))
        probe.settings_dict["OPTIONS"] = {
            **probe.settings_dict.get("OPTIONS", {}),
            "connect_timeout": timeout,
        }
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DB_ERRORS:
        return False
    finally:
        with contextlib.suppress(*DB_ERRORS):
            probe.close()
    return True


# --- last-known copies ---------------------------------------------------------------------


def _snapshot_dir() -> Path:
    return Path(_setting("BC_SNAPSHOT_DIR", Path(settings.BC_VAR_DIR) / "snapshots"))


def _snapshot_paths() -> re.Pattern[str]:
    return re.compile(_setting("BC_DEGRADED_SNAPSHOT_PATHS", DEFAULT_SNAPSHOT_PATHS))


def snapshot_key(request: HttpRequest) -> str | None:
    """A name for (credential, URL), or None when the request carries no credential. Keyed with
    the secret key, so a file name tells nothing about the credential."""
    credential = request.headers.get("Authorization", "") or request.COOKIES.get(
        settings.SESSION_COOKIE_NAME, ""
    )
    if not credential or not _snapshot_paths().match(request.path):
        return None
    message = f"{credential}\0{request.get_full_path()}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def save_snapshot(key: str, response: HttpResponse) -> None:
    """Keep the answer (atomically, mode 0600); a failure to write never fails the request."""
    if response.streaming or len(response.content) > MAX_SNAPSHOT_BYTES:
        return
    record = {
        "saved_at": time.time(),
        "content_type": response.get("Content-Type", "application/json"),
        "body": response.content.decode("utf-8", errors="replace"),
    }
    directory = _snapshot_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        os.replace(tmp, directory / f"{key}.json")
    except OSError as exc:
        log.warning("could not keep a last-known copy: %s", exc)


def load_snapshot(key: str) -> dict[str, Any] | None:
    max_age = float(_setting("BC_DEGRADED_SNAPSHOT_MAX_AGE", 24 * 3600))
    try:
        record = json.loads((_snapshot_dir() / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if time.time() - float(record.get("saved_at", 0)) > max_age:
        return None
    return record


def _stale_response(record: dict[str, Any]) -> HttpResponse:
    saved = datetime.fromtimestamp(record["saved_at"], tz=UTC)
    age = max(0, int(time.time() - record["saved_at"]))
    marker = {
        "stale": True,
        "reason": "database_unreachable",
        "snapshot_at": saved.isoformat(),
        "age_seconds": age,
        "detail": "Last known copy: the service's own database is unreachable.",
    }
    body = record["body"]
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict):
            body = json.dumps({**data, "degraded": marker})
    response = HttpResponse(body, status=200, content_type=record["content_type"])
    response["X-BC-Degraded"] = "database-unreachable"
    response["X-BC-Snapshot-At"] = marker["snapshot_at"]
    response["Warning"] = '110 - "Response is Stale"'
    response["Cache-Control"] = "no-store"
    return response


# --- responses -----------------------------------------------------------------------------


def _unavailable(request: HttpRequest, message: str, outcome: str) -> HttpResponse:
    retry = int(_setting("BC_DEGRADED_RECHECK_SECONDS", 5))
    body = {
        "detail": message,
        "code": "service_degraded",
        "reason": "database_unreachable",
        "outcome": outcome,
    }
    if request.path.startswith("/api/") or "text/html" not in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(
            f"<!doctype html><title>Service degraded</title><h1>Service degraded</h1>"
            f"<p>{message}</p>",
            status=503,
        )
    response["Retry-After"] = str(retry)
    response["X-BC-Degraded"] = "database-unreachable"
    response["Cache-Control"] = "no-store"
    return response


def degraded_response(request: HttpRequest, *, during: bool) -> HttpResponse:
    """The answer while the store is down. ``during``: the outage hit this request after it had
    written something, so whether its change committed is unknown."""
    method = request.method or "GET"
    if method not in SAFE_METHODS:
        if during:
            return _unavailable(request, UNCONFIRMED.format(method=method), "unconfirmed")
        return _unavailable(request, REFUSED.format(method=method), "not_applied")
    key = snapshot_key(request)
    record = load_snapshot(key) if key and method == "GET" else None
    if record is not None:
        return _stale_response(record)
    return _unavailable(request, NO_SNAPSHOT, "not_applied")


_READS = ("SELECT", "SET ", "SHOW", "SAVEPOIN", "RELEASE", "ROLLBACK")


class _WriteTracker:
    """Marks the request once a statement other than a plain read has completed."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ):
        result = execute(sql, params, many, context)
        if not sql.lstrip()[:6].upper().startswith(("SELECT", "SET ", "SHOW")):
            self.request._bc_wrote = True  # type: ignore[attr-defined]
        return result


class DegradedModeMiddleware:
    """Place it before the session and authentication middleware (bcservice/settings.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in EXEMPT_PATHS:
            return self.get_response(request)
        if breaker.is_down():
            return degraded_response(request, during=False)
        if request.method in SAFE_METHODS:
            response = self.get_response(request)
        else:
            # Which statements completed tells "refused, nothing changed" from "unconfirmed".
            with connection.execute_wrapper(_WriteTracker(request)):
                response = self.get_response(request)
        if response.status_code == 500 and not store_reachable():
            # A failure outside the view (e.g. saving the session) that process_exception did
            # not see: still an outage, still no 500.
            breaker.mark_down()
            return degraded_response(request, during=getattr(request, "_bc_wrote", False))
        if breaker.down_since is not None and not response.has_header("X-BC-Degraded"):
            breaker.mark_up()  # this request reached the view without a connection error
        if (
            request.method == "GET"
            and response.status_code == 200
            and not response.has_header("X-BC-Degraded")
            and "json" in response.get("Content-Type", "")
        ):
            key = snapshot_key(request)
            if key:
                save_snapshot(key, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DB_ERRORS):
            return None
        if store_reachable():
            breaker.mark_up()
            return None  # one statement failed, the store is fine: a normal error
        log.warning("database error in %s %s: %s", request.method, request.path, exception)
        breaker.mark_down()
        return degraded_response(request, during=getattr(request, "_bc_wrote", False))
