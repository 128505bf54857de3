"""Planning a CMDB sync: what would change, what would be created, and every bad row.

Reads only. File-level checks (types, choices, duplicates) come first, then the database's
(unknown sites, the model's own validation of the resulting resource), so the plan names every
problem at once instead of stopping at the first.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from inventory.choices import Environment, Platform
from inventory.cmdb.source import REQUIRED, Problem, Row
from inventory.models import Resource, Site
from inventory.models.inventory import validate_name

OWNED = ("owner", "environment", "tier")
CREATE_FIELDS = ("platform", "primary_site", "dr_site", "connection")
LOCAL_FIELDS = ("platform", "primary_site", "dr_site")  # compared, reported, never changed
_TIER_RE = re.compile(r"^(?:tier[\s_-]*)?([123])$", re.IGNORECASE)
_CHUNK = 1000  # names per IN (...) query: well under SQLite's variable limit


@dataclass
class Change:
    line: int
    name: str
    fields: dict[str, tuple[Any, Any]]  # field -> (old, new)
    instance: Resource = field(repr=False)


@dataclass
class Create:
    line: int
    name: str
    values: dict[str, Any]
    instance: Resource = field(repr=False)


@dataclass
class Plan:
    rows: int = 0
    changes: list[Change] = field(default_factory=list)
    creates: list[Create] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)  # not in the inventory, no creation
    unchanged: int = 0
    notes: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    unknown_sites: set[str] = field(default_factory=set)
    not_in_file: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """Plain data for templates, tests and the fingerprint (no model instances)."""
        return {
            "rows": self.rows,
            "updates": [
                {
                    "line": c.line,
                    "name": c.name,
                    "fields": {k: list(v) for k, v in c.fields.items()},
                }
                for c in self.changes
            ],
            "creates": [{"line": c.line, "name": c.name, **c.values} for c in self.creates],
            "skipped": [{"line": p.line, "name": p.name, "reason": p.reason} for p in self.skipped],
            "unchanged": self.unchanged,
            "notes": [{"line": p.line, "name": p.name, "reason": p.reason} for p in self.notes],
            "errors": [{"line": p.line, "name": p.name, "reason": p.reason} for p in self.errors],
            "unknown_sites": sorted(self.unknown_sites),
            "not_in_file": self.not_in_file,
        }

    def fingerprint(self) -> str:
        """Identifies what applying would do: the admin's confirmation must match its preview."""
        data = self.as_dict()
        keep = {k: data[k] for k in ("updates", "creates", "errors")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()

    def report_lines(self) -> list[str]:
        """The plan as text: one line per change, creation, skipped row, note and error."""
        out = [
            f"{self.rows} row(s): {len(self.changes)} to update, {len(self.creates)} to create, "
            f"{self.unchanged} unchanged, {len(self.skipped)} not in the inventory, "
            f"{len(self.errors)} bad; {self.not_in_file} resource(s) not in the file (kept)"
        ]
        for c in self.changes:
            diffs = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in c.fields.items())
            out.append(f"~ line {c.line} {c.name}: {diffs}")
        for c in self.creates:
            v = c.values
            out.append(
                f"+ line {c.line} {c.name}: new {v['platform']} resource, tier {v['tier']}, "
                f"{v['environment']}, owner {v['owner']!r}, {v['primary_site']} -> {v['dr_site']}"
            )
        out += [f"  line {p.line} {p.name}: {p.reason}" for p in self.skipped]
        out += [f"note: line {p.line} {p.name}: {p.reason}" for p in self.notes]
        out += [f"ERROR line {p.line}: {p.reason}" for p in self.errors]
        if self.unknown_sites:
            out.append(f"unknown sites: {', '.join(sorted(self.unknown_sites))}")
        return out


# --- planning --------------------------------------------------------------------------------


def _choice(value: Any, choices: type, wrong: str) -> str:
    """The stored value for a choice given as its value or its label, in any case."""
    text = str(value).strip().lower()
    for option, label in choices.choices:
        if text in (option, str(label).lower()):
            return option
    raise ValueError(f"{wrong} {value!r} (one of: {', '.join(choices.values)})")


def _connection(value: Any) -> dict[str, Any]:
    """Connection settings: a JSON object, or (in CSV) its text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"connection is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise ValueError("connection must be a JSON object")
    return value


def _normalise(row: Row) -> tuple[dict[str, Any], list[str]]:
    """Typed values and the reasons the row is bad (file-level checks only, no database)."""
    raw, out, reasons = row.values, {}, []
    given = {k for k, v in raw.items() if v not in (None, "")}
    reasons += [f"missing {key}" for key in REQUIRED if key not in given]
    for key in ("name", "owner", "primary_site", "dr_site", "secret_ref"):
        if key in given and not isinstance(raw[key], str):
            reasons.append(f"{key} must be text")
        elif key in given:
            out[key] = raw[key].strip()
    if "name" in out:
        try:
            validate_name(out["name"])
        except ValidationError as exc:
            reasons.append(f"invalid name {out['name']!r}: {exc.messages[0]}")
    if "tier" in given:
        # 1, "1", "Tier 1"; str(True) and str(1.5) do not match, so booleans are refused.
        match = _TIER_RE.match(str(raw["tier"]).strip())
        if match:
            out["tier"] = int(match.group(1))
        else:
            reasons.append(f"invalid tier {raw['tier']!r} (1, 2 or 3)")
    checks = (
        ("environment", lambda v: _choice(v, Environment, "invalid environment")),
        ("platform", lambda v: _choice(v, Platform, "unknown platform")),
        ("connection", _connection),
    )
    for key, check in checks:
        if key in given:
            try:
                out[key] = check(raw[key])
            except ValueError as exc:
                reasons.append(str(exc))
    return out, reasons


def _errors_of(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{k}: {m}" for k, msgs in exc.message_dict.items() for m in msgs]
    return list(exc.messages)


def _existing(names: list[str], lock: bool) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for i in range(0, len(names), _CHUNK):
        qs = Resource.objects.filter(name__in=names[i : i + _CHUNK]).order_by("pk")
        # Locked for the length of the apply transaction: nobody edits a row between our
        # reading it and writing it, so local changes made meanwhile are never overwritten.
        qs = qs.select_for_update() if lock else qs.select_related("primary_site", "dr_site")
        found.update((r.name, r) for r in qs)
    return found


def build_plan(rows: list[Row], *, create: bool, lock: bool = False) -> Plan:
    """What syncing ``rows`` would do to the inventory now; reads only."""
    plan = Plan(rows=len(rows))
    names = [r.values["name"] for r in rows if isinstance(r.values.get("name"), str)]
    existing = _existing(sorted({n.strip() for n in names}), lock)
    sites = {s.name: s for s in Site.objects.all()}
    first_line: dict[str, int] = {}
    for row in rows:
        values, reasons = _normalise(row)
        name = values.get("name", "")
        if name in first_line:
            reasons.append(
                f"duplicate name {name!r} in the file (first on line {first_line[name]})"
            )
        elif name:
            first_line[name] = row.line
        for key in ("primary_site", "dr_site"):
            if key in values and values[key] not in sites:
                reasons.append(f"unknown site {values[key]!r} ({key})")
                plan.unknown_sites.add(values[key])
        resource = existing.get(name)
        if resource is None and create and not reasons:
            missing = [f for f in CREATE_FIELDS if f not in values]
            if missing:
                reasons.append(f"missing {', '.join(missing)} (needed to create {name!r})")
        if reasons:
            plan.errors += [Problem(row.line, f"{name or '?'}: {r}", name) for r in reasons]
            continue
        if resource is None:
            _plan_create(plan, row.line, values, sites, create)
        else:
            _plan_update(plan, row.line, values, resource)
    plan.not_in_file = Resource.objects.count() - len(existing)
    return plan


def _plan_create(
    plan: Plan, line: int, values: dict[str, Any], sites: dict[str, Site], create: bool
) -> None:
    name = values["name"]
    if not create:
        plan.skipped.append(Problem(line, "not in the inventory (creation not allowed)", name))
        return
    fields = {k: values[k] for k in ("platform", "tier", "environment", "owner", "connection")}
    instance = Resource(
        name=name,
        primary_site=sites[values["primary_site"]],
        dr_site=sites[values["dr_site"]],
        secret_ref=values.get("secret_ref", ""),
        **fields,
    )
    try:
        # The name is known to be free (looked up above); the unique index still guards races.
        instance.full_clean(validate_unique=False)
    except ValidationError as exc:
        plan.errors += [Problem(line, f"{name}: {m}", name) for m in _errors_of(exc)]
        return
    shown = {k: values[k] for k in ("platform", "tier", "environment", "owner")}
    shown.update(primary_site=values["primary_site"], dr_site=values["dr_site"])
    plan.creates.append(Create(line, name, shown, instance))


def _plan_update(plan: Plan, line: int, values: dict[str, Any], resource: Resource) -> None:
    name = resource.name
    local = {
        "platform": resource.platform,
        "primary_site": resource.primary_site.name,
        "dr_site": resource.dr_site.name,
    }
    for key in LOCAL_FIELDS:
        if key in values and values[key] != local[key]:
            plan.notes.append(
                Problem(
                    line, f"{key} is {local[key]!r} here, {values[key]!r} in the file: kept", name
                )
            )
    fields = {
        key: (getattr(resource, key), values[key])
        for key in OWNED
        if getattr(resource, key) != values[key]
    }
    if not fields:
        plan.unchanged += 1
        return
    candidate = copy.copy(resource)
    for key, (_, new) in fields.items():
        setattr(candidate, key, new)
    try:
        candidate.full_clean(validate_unique=False)
    except ValidationError as exc:
        plan.errors += [Problem(line, f"{name}: {m}", name) for m in _errors_of(exc)]
        return
    plan.changes.append(Change(line, name, fields, resource))
