"""Slack incoming webhook: a ``text`` fallback plus Block Kit ``blocks`` (a section and a line
of context). The webhook URL is the secret (``webhook_url`` in the route's secret reference)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifications.channels import ChannelError, Message
from notifications.channels.http import post_json
from notifications.choices import Action

_ICON = {"critical": ":rotating_light:", "error": ":red_circle:", "warning": ":warning:"}


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body_for(message: Message) -> dict[str, Any]:
    icon = (
        ":white_check_mark:"
        if message.action == Action.RESOLVE
        else _ICON.get(message.severity, ":information_source:")
    )
    title = f"{icon} {message.title}"
    section = "\n".join([f"*{_escape(title)}*", *(_escape(line) for line in message.lines)])
    return {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section[:2900]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(message.facts)}]},
        ],
    }


def send(message: Message, route: Any, secret: Mapping[str, str]) -> str:
    url = (secret.get("webhook_url") or secret.get("url") or "").strip()
    if not url:
        raise ChannelError("the route's secret holds no webhook_url", permanent=True)
    status, _ = post_json(url, body_for(message))
    return f"Slack: HTTP {status}"
