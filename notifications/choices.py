"""Choice sets of notifications: channels, delivery states and actions, and the event kinds.

Tiers and environments are plain values here (notifications sits at the bottom of the stack and
imports no other app); tests/notifications checks that they match ``inventory.choices``.
"""

from django.db import models

PRODUCTION = "production"
ENVIRONMENTS = ("production", "staging", "development", "test")
TIERS = (1, 2, 3)


class Channel(models.TextChoices):
    PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "E-mail"
    LOG = "log", "Log"
    GDS = "gds", "gds_notification"


# Channels whose target is a secret (routing key, webhook URL): the route holds a reference.
SECRET_CHANNELS = (Channel.PAGERDUTY, Channel.SLACK)


class Action(models.TextChoices):
    TRIGGER = "trigger", "Trigger"  # an alert opens (paging channels open an incident)
    RESOLVE = "resolve", "Resolve"  # the alert's condition is over
    NOTIFY = "notify", "Notify"  # information that opens nothing (requests, executions)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused by the router"

    @classmethod
    def open(cls) -> tuple[str, ...]:
        """States a worker may still pick up (sending only once its lease has expired)."""
        return (cls.PENDING, cls.RETRYING, cls.SENDING)


# Alert conditions of a resource, derived from its status (see notifications.alerts).
RED = "red"
VISIBILITY_LOST = "visibility_lost"

# The event kinds this service emits, for the admin's help text and docs/notifications.md.
KNOWN_KINDS = (
    "status.red",
    "status.visibility_lost",
    "status.recovered",
    "request.created",
    "request.approved",
    "request.rejected",  # denied by an approver
    "request.expired",
    "request.cancelled",
    "request.running",
    "request.succeeded",
    "request.failed",
    "execution.started",
    "execution.succeeded",
    "execution.failed",
    "breakglass.opened",
    "breakglass.closed",
    "breakglass.reviewed",
)
