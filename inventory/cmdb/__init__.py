"""CMDB sync: the CMDB is the source of truth for who owns a resource, nothing else.

One path for the admin upload and ``manage.py cmdb_sync``: read (file, URL or upload) -> parse
(CSV or JSON, every row keeps its line number) -> plan (what would change, and every bad row) ->
apply (only a plan without errors, all in one transaction, each change through
``inventory.services`` so it is validated, lands in history and is audited).

The CMDB owns ``owner``, ``environment`` and ``tier``. Everything else is local configuration
(thresholds, connection settings, secret reference, sites, platform) and is never changed for an
existing resource; the file's values for those fields are used only to create a resource when
creation is allowed. Resources missing from the file are left alone (reported, never deleted):
the CMDB lists assets, it does not decide which of them this service watches.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit import services as audit
from inventory import services
from inventory.cmdb.plan import OWNED, Change, Create, Plan, build_plan
from inventory.cmdb.source import (
    CmdbError,
    Problem,
    Row,
    Source,
    detect_format,
    from_bytes,
    parse,
    read_source,
)

__all__ = [
    "OWNED",
    "Change",
    "CmdbError",
    "Create",
    "Plan",
    "PlanChanged",
    "PlanRejected",
    "Problem",
    "Row",
    "Source",
    "apply",
    "build_plan",
    "detect_format",
    "from_bytes",
    "parse",
    "preview",
    "read_source",
]


class PlanRejected(CmdbError):
    """The plan has bad rows; nothing was applied."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(f"{len(plan.errors)} bad row(s); nothing was applied")
        self.plan = plan


class PlanChanged(CmdbError):
    """The inventory changed between the preview and the confirmation; nothing was applied."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("The inventory changed since the preview; review the new preview.")
        self.plan = plan


def preview(source: Source, *, create: bool) -> Plan:
    """The dry run: parse and plan, write nothing."""
    rows, problems = parse(source)
    plan = build_plan(rows, create=create)
    plan.errors = sorted(problems + plan.errors, key=lambda p: p.line)
    return plan


def apply(source: Source, *, actor: Any, create: bool, expect: str | None = None) -> Plan:
    """Validate everything, then apply all of it in one transaction, or nothing.

    ``actor`` is the admin user or the string "cmdb_sync" (the CLI); ``expect`` is the
    fingerprint of the plan the admin confirmed. Raises PlanRejected or PlanChanged.
    """
    rows, problems = parse(source)
    with transaction.atomic():
        plan = build_plan(rows, create=create, lock=True)
        plan.errors = sorted(problems + plan.errors, key=lambda p: p.line)
        if plan.errors:
            raise PlanRejected(plan)
        if expect is not None and plan.fingerprint() != expect:
            raise PlanChanged(plan)
        for change in plan.changes:
            for key, (_, new) in change.fields.items():
                setattr(change.instance, key, new)
            services.save_object(actor=actor, instance=change.instance)
        for new in plan.creates:
            services.save_object(actor=actor, instance=new.instance)
        if plan.changes or plan.creates:
            # One event tying the per-resource events to the file they came from.
            audit.record(
                action="cmdb.synced",
                actor=actor,
                object_type="inventory.cmdb",
                object_name=source.label[:255],
                after={
                    "source": source.label,
                    "sha256": source.sha256,
                    "updated": [c.name for c in plan.changes],
                    "created": [c.name for c in plan.creates],
                },
            )
    return plan
