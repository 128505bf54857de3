"""Configuration history for auditors: who changed what and when (django-simple-history).

A registry of history sources, each a name and a model tracked by ``HistoricalRecords``. The
defaults cover inventory and approval configuration; other apps add theirs from their
``AppConfig.ready`` with ``register_history("route", "notifications.Route")``. Labels resolve
lazily, so a source whose app is not installed (yet) is skipped rather than breaking the audit
app, and audit never imports the apps it reports on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet

from audit.chain import format_time
from audit.snapshot import json_safe

HISTORY_COLUMNS = (
    "history_id",
    "at",
    "action",
    "actor_id",
    "actor_name",
    "object_id",
    "object_name",
    "changes",
    "values",
    "reason",
)
ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
# Never exported, whatever model they are on (the same rule as audit snapshots).
_REDACTED = {"password", "key", "token", "secret"}


@dataclass(frozen=True)
class HistorySource:
    name: str
    model_label: str
    description: str = ""


_REGISTRY: dict[str, HistorySource] = {}


def register_history(name: str, model_label: str, description: str = "") -> None:
    """Make a tracked model's history exportable as ``audit/config-history/<name>/``."""
    _REGISTRY[name] = HistorySource(name, model_label, description)


for _name, _label, _text in (
    ("site", "inventory.Site", "sites"),
    ("resource", "inventory.Resource", "monitored databases and their thresholds"),
    ("group", "inventory.ResourceGroup", "resource groups"),
    ("group_membership", "inventory.GroupMembership", "group members and their order"),
    ("policy", "approvals.ApprovalPolicy", "approval policies"),
    ("breakglass_eligibility", "approvals.BreakGlassEligibility", "who may break glass"),
    ("role_mapping", "accounts.RoleMapping", "identity-provider group to role mappings"),
):
    register_history(_name, _label, _text)


def _tracked(source: HistorySource) -> type[models.Model] | None:
    try:
        model = apps.get_model(source.model_label)
    except (LookupError, ValueError):
        return None
    history = getattr(model, "history", None)
    return model if history is not None and hasattr(history, "model") else None


def sources() -> list[tuple[HistorySource, type[models.Model]]]:
    """Registered sources whose model is installed and tracked, by name."""
    found = [(s, _tracked(s)) for s in sorted(_REGISTRY.values(), key=lambda s: s.name)]
    return [(s, m) for s, m in found if m is not None]


def source(name: str) -> tuple[HistorySource, type[models.Model]] | None:
    registered = _REGISTRY.get(name)
    model = _tracked(registered) if registered else None
    return (registered, model) if registered and model else None


def object_key(model: type[models.Model], object_id: str) -> Any:
    """``object_id`` as the model's primary key type; ValueError when it cannot be one."""
    field = model._meta.pk
    try:
        value = field.to_python(object_id)
    except ValidationError as exc:
        raise ValueError(exc.messages[0]) from exc
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError("Out of range.")
    return value


def records(
    model: type[models.Model],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str = "",
    object_id: str = "",
) -> QuerySet:
    """Historical records of ``model`` in the order they were written."""
    queryset = model.history.model.objects.select_related("history_user").order_by("history_id")
    if since is not None:
        queryset = queryset.filter(history_date__gte=since)
    if until is not None:
        queryset = queryset.filter(history_date__lt=until)
    if actor:
        queryset = queryset.filter(history_user__username=actor)
    if object_id:
        queryset = queryset.filter(**{model._meta.pk.attname: object_key(model, object_id)})
    return queryset


class Differ:
    """Turns records into rows with "changes" against each object's previous record.

    Remembers the last values seen per object, so a stream costs one extra query per object (for
    the record before the window), not one per record.
    """

    def __init__(self, model: type[models.Model]) -> None:
        self.history_model = model.history.model
        self.pk = model._meta.pk.attname
        self.fields = [
            f
            for f in self.history_model._meta.concrete_fields
            if not f.name.startswith("history_") and f.name not in _REDACTED
        ]
        self.seen: dict[Any, dict[str, Any]] = {}

    def values(self, record: Any) -> dict[str, Any]:
        return json_safe({f.attname: f.value_from_object(record) for f in self.fields})

    def _previous(self, record: Any) -> dict[str, Any] | None:
        key = getattr(record, self.pk)
        if key in self.seen:
            return self.seen[key]
        earlier = (
            self.history_model.objects.filter(**{self.pk: key}, history_id__lt=record.history_id)
            .order_by("-history_id")
            .first()
        )
        return self.values(earlier) if earlier is not None else None

    def row(self, record: Any) -> dict[str, Any]:
        values = self.values(record)
        previous = self._previous(record)
        changes = []
        if record.history_type != "-":
            before = previous or {}
            changes = [
                {"field": name, "old": before.get(name), "new": value}
                for name, value in values.items()
                if before.get(name) != value
            ]
        self.seen[getattr(record, self.pk)] = values
        user = record.history_user
        return {
            "history_id": record.history_id,
            "at": format_time(record.history_date),
            "action": ACTIONS.get(record.history_type, record.history_type),
            "actor_id": record.history_user_id,
            "actor_name": user.get_username() if user is not None else "",
            "object_id": str(getattr(record, self.pk)),
            "object_name": str(values.get("name", "")),
            "changes": changes,
            "values": values,
            "reason": record.history_change_reason or "",
        }


def history_rows(model: type[models.Model], queryset: QuerySet) -> Iterator[dict[str, Any]]:
    """Rows for every record of ``queryset`` (ordered by history_id), in keyset batches."""
    differ = Differ(model)
    last = None
    while True:
        page = queryset if last is None else queryset.filter(history_id__gt=last)
        batch = list(page[:1000])
        if not batch:
            return
        for record in batch:
            yield differ.row(record)
        last = batch[-1].history_id
