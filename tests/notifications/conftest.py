"""Local receivers for the notification channels, and route and status helpers.

- ``receiver``: an HTTP server on 127.0.0.1 (http.server in a thread) that records every POST
  (path, headers, JSON body) and answers with the status the test chose (default 202).
- ``smtp``: an aiosmtpd SMTP server on 127.0.0.1 recording the messages it accepts.
- ``make_route``: a saved, validated route through the audited service.
- ``status_change``: a call to ``notify`` shaped exactly like the one monitoring makes.

Channel secrets come from ``env:`` references set with monkeypatch (the resolver's own backend).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Receiver:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 202
    error_body: bytes = b'{"status":"error","message":"receiver says no"}'
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["json"] for r in self.requests]


def _start_receiver() -> tuple[ThreadingHTTPServer, Receiver]:
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            rec = box["r"]
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.lock:
                rec.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
                )
                status = rec.statuses.pop(0) if rec.statuses else 202
            body = b'{"status":"success","message":"Event processed"}'
            if status >= 400:
                body = rec.error_body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, box["r"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server, rec = _start_receiver()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def pagerduty(receiver: Receiver, settings, monkeypatch) -> Receiver:
    """The receiver as PagerDuty's Events API, and a routing key behind ``env:BC_TEST_PD``."""
    settings.BC_PAGERDUTY_EVENTS_URL = f"{receiver.url}/v2/enqueue"
    monkeypatch.setenv("BC_TEST_PD", json.dumps({"routing_key": "R0UT1NGKEY0123456789abcdef"}))
    return receiver


@pytest.fixture
def slack(monkeypatch) -> Iterator[Receiver]:
    server, rec = _start_receiver()
    rec.statuses = []
    url = f"{rec.url}/services/T000/B000/XXXXsecretXXXXtoken"
    monkeypatch.setenv("BC_TEST_SLACK", json.dumps({"webhook_url": url}))
    yield rec
    server.shutdown()
    server.server_close()


@dataclass
class Smtp:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)


@pytest.fixture
def smtp(settings) -> Iterator[Smtp]:
    from aiosmtpd.controller import Controller

    box = Smtp("127.0.0.1", 0)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            msg = message_from_bytes(envelope.original_content or envelope.content)
            box.messages.append({"rcpt": list(envelope.rcpt_tos), "msg": msg})
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        box.port = sock.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = box.host, box.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "bcservice@example.test"
    yield box
    controller.stop()


@pytest.fixture
def make_route(db) -> Callable[..., Any]:
    from notifications import services
    from notifications.models import Route

    def make(name: str, channel: str = "log", **fields: Any) -> Route:
        values: dict[str, Any] = {"kinds": "*", "channel": channel}
        if channel == "pagerduty":
            values["secret_ref"] = "env:BC_TEST_PD"
        if channel == "slack":
            values["secret_ref"] = "env:BC_TEST_SLACK"
        values.update(fields)
        return services.route_save(actor="test", route=Route(name=name, **values))

    return make


def status_payload(name: str, state: str, visibility: str, *reasons: str) -> dict[str, Any]:
    return {
        "resource": name,
        "before": {},
        "after": {
            "state": state,
            "visibility": visibility,
            "reasons": [{"code": r, "message": f"{r} message"} for r in reasons],
        },
    }


@pytest.fixture
def status_change(db) -> Callable[..., None]:
    """``status_change(resource_id, state, visibility, tier=1, environment="production")``."""
    from notifications.services import notify

    def change(
        resource_id: int,
        state: str,
        visibility: str = "ok",
        *reasons: str,
        tier: int = 1,
        environment: str = "production",
        name: str = "orders-db",
    ) -> None:
        notify(
            "resource.status_changed",
            subject=f"{name}: {state}",
            tier=tier,
            environment=environment,
            payload=status_payload(name, state, visibility, *reasons),
            resource_id=resource_id,
        )

    return change


@pytest.fixture
def deliver_all() -> Callable[[], list[str]]:
    """Run the worker's delivery for every due delivery (what the enqueued tasks would do)."""
    from notifications import delivery
    from notifications.models import Delivery

    def run() -> list[str]:
        ids = Delivery.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True)
        return [delivery.attempt(pk) for pk in list(ids)]

    return run
