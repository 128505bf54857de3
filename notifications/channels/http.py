"""POSTing JSON for the webhook channels, with the standard library only.

Errors name the kind of failure and the HTTP status, never the URL: a Slack webhook URL is itself
the secret. 408, 429 and 5xx are worth a retry; any other 4xx is permanent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

from notifications.channels import ChannelError

_RETRYABLE = {408, 425, 429}


def post_json(url: str, body: dict[str, Any]) -> tuple[int, str]:
    """POST ``body`` as JSON; returns (status, start of the response text) for a 2xx answer."""
    if not url.startswith(("https://", "http://")):
        raise ChannelError("the target URL is not http(s)", permanent=True)
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "bcservice-notifications"},
    )
    timeout = float(getattr(settings, "BC_NOTIFY_HTTP_TIMEOUT", 10))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(300).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status = exc.code
        excerpt = _excerpt(exc)
        permanent = 400 <= status < 500 and status not in _RETRYABLE
        raise ChannelError(
            f"HTTP {status} from the receiver{excerpt}", permanent=permanent
        ) from None
    except TimeoutError:
        raise ChannelError(f"no answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        name = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        raise ChannelError(f"connection failed ({name})") from None
    except OSError as exc:
        raise ChannelError(f"connection failed ({type(exc).__name__})") from None


def _excerpt(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(200).decode("utf-8", "replace").strip()
    except Exception:
        return ""
    return f": {text}" if text else ""
