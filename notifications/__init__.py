"""Notifications: ``notify`` records an event, routes it by kind, tier and environment, and the
worker delivers it (PagerDuty, Slack, e-mail, log, gds_notification) with retries.

See ``notifications.services`` and docs/notifications.md.
"""
