"""Built-in channels: one module each, one ``send(message, route, secret) -> detail`` function.

A channel gets a ``Message`` (what to say), the ``Route`` (where: its target) and the route's
resolved secret (routing key, webhook URL; empty for channels without one). It returns a short
detail for the delivery record, or raises ``ChannelError``: ``permanent`` when repeating the same
request cannot help (e.g. HTTP 400), otherwise the worker retries with backoff. Channels are only
called by the worker, never by ``notify``. Error texts never contain the secret or the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notifications.choices import Action


class ChannelError(Exception):
    """A delivery attempt failed; ``permanent`` when a retry would fail the same way."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


_ALERT_SEVERITY = {1: "critical", 2: "error", 3: "warning"}
_KIND_SEVERITY = {
    "execution.failed": "error",
    "breakglass.opened": "warning",
    "request.expired": "warning",
}


def severity_for(kind: str, tier: int | None) -> str:
    """PagerDuty's severity scale (critical, error, warning, info), used by every channel."""
    if kind in ("status.red", "status.visibility_lost"):
        return _ALERT_SEVERITY.get(tier or 0, "error")
    return _KIND_SEVERITY.get(kind, "info")


@dataclass(frozen=True)
class Message:
    event_id: int
    kind: str
    action: str  # notifications.choices.Action
    dedup_key: str
    subject: str
    tier: int | None
    environment: str
    resource_id: int | None
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    lines: tuple[str, ...] = ()  # body: reasons or details, one per line

    @property
    def severity(self) -> str:
        return "info" if self.action == Action.RESOLVE else severity_for(self.kind, self.tier)

    @property
    def title(self) -> str:
        prefix = "RESOLVED: " if self.action == Action.RESOLVE else ""
        return f"{prefix}{self.subject}"

    @property
    def source(self) -> str:
        return str(self.payload.get("resource") or "bcservice")

    @property
    def facts(self) -> str:
        tier = f"tier {self.tier}" if self.tier else "no tier"
        return f"{self.kind} · {tier} · {self.environment or 'no environment'} · #{self.event_id}"

    @property
    def text(self) -> str:
        return "\n".join([self.title, *self.lines, "", self.facts])


Sender = Callable[[Message, Any, Mapping[str, str]], str]


def sender(channel: str) -> Sender:
    """The send function of ``channel`` (imported lazily: e-mail pulls in Django's mail)."""
    from notifications.channels import email, gds, log, pagerduty, slack

    senders: dict[str, Sender] = {
        "pagerduty": pagerduty.send,
        "slack": slack.send,
        "email": email.send,
        "log": log.send,
        "gds": gds.send,
    }
    try:
        return senders[channel]
    except KeyError:
        raise ChannelError(f"unknown channel {channel!r}", permanent=True) from None
