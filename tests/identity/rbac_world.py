"""The world the RBAC matrix runs in: one principal per role and, for every kind of object a
route can name, one object inside the scoped principals' scope and one outside it.

Principals: anonymous, ``norole`` (logged in, no role), the six roles. The four non-global roles
are scoped (django-guardian ``view_resource``/``view_resourcegroup`` on the "in" resource and
group), so each object route is tried in scope (the role decides) and out of scope (hidden:
404). Admin and auditor see everything. The requester and the break-glass grantee are separate
people, so "requester or admin" and "grantee or admin" rules show as admin-only here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.utils import timezone
from guardian.shortcuts import assign_perm

ROLES = ("viewer", "operator", "approver_it", "approver_business", "admin", "auditor")
PRINCIPALS = ("anonymous", "norole", *ROLES)
SCOPED_ROLES = ("viewer", "operator", "approver_it", "approver_business")


@dataclass
class World:
    users: dict[str, Any]
    # kind -> {"in": id, "out": id}; unscoped kinds have the same id for both
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # kind -> why it could not be built

    def ident(self, kind: str, where: str) -> Any:
        return self.objects[kind][where]


def _both(value: Any) -> dict[str, Any]:
    return {"in": value, "out": value}


def build_world(
    make_user: Callable[..., Any], make_resource: Callable[..., Any], sites, need: str | None = None
) -> World:
    """Principals, the in/out resources and groups, and the objects of kind ``need`` (only those:
    requests and grants are costly and most routes name no object)."""
    from inventory.models import ResourceGroup
    from inventory.services import group_set_members

    users = {"norole": make_user(username="p_norole")}
    for role in ROLES:
        users[role] = make_user(role, username=f"p_{role}")
    res = {"in": make_resource("in-db"), "out": make_resource("out-db")}
    groups = {}
    for where in ("in", "out"):
        groups[where] = ResourceGroup.objects.create(name=f"{where}-group", tier=1)
        group_set_members(actor=None, group=groups[where], resources=[res[where]])
    for role in SCOPED_ROLES:
        assign_perm("inventory.view_resource", users[role], res["in"])
        assign_perm("inventory.view_resourcegroup", users[role], groups["in"])
    world = World(users=users)
    world.objects["site"] = _both(sites["east"].pk)
    world.objects["resource"] = {k: v.pk for k, v in res.items()}
    world.objects["group"] = {k: v.pk for k, v in groups.items()}
    for kind, build in _BUILDERS.items():
        if need not in _NEEDS[kind]:
            continue
        try:
            world.objects.update(build(make_user, res, sites))
        except Exception as exc:  # a builder for another team's model may lag behind it
            world.missing[kind] = f"{type(exc).__name__}: {exc}"
    return world


def _requests(make_user, res, sites) -> dict[str, dict[str, Any]]:
    from approvals import services

    importlib.import_module("approvals.migrations.0002_default_policies").create_defaults(
        apps, None
    )
    requester = make_user("operator", username="w_requester")
    it, biz = make_user("approver_it", username="w_it"), make_user("approver_business")
    out: dict[str, dict[str, Any]] = {"request": {}, "approved_request": {}, "policy": {}}
    for where, resource in res.items():
        for key in ("request", "approved_request"):
            request = services.request_create(
                actor=requester,
                kind="switchover",
                resource=resource,
                target_site=sites["west"],
                reason="rbac matrix",
                change_ticket="CHG0012345",
            )
            out[key][where] = request.pk
            if key == "approved_request":
                services.request_approve(request, actor=it, comment="ok")
                services.request_approve(request, actor=biz, comment="ok")
        out["policy"][where] = request.policy_id
    return out


def _executions(make_user, res, sites) -> dict[str, dict[str, Any]]:
    from approvals.models import ExecutionRequest
    from executions.models import Execution

    starter = make_user("operator", username="w_starter")
    out: dict[str, Any] = {}
    for where, resource in res.items():
        request = ExecutionRequest.objects.get(resource=resource, state="approved")
        out[where] = Execution.objects.create(
            request=request, kind=request.kind, started_by=starter
        ).pk
    return {"execution": out}


def _grants(make_user, res, sites) -> dict[str, dict[str, Any]]:
    from approvals import services
    from approvals.models import BreakGlassEligibility, BreakGlassGrant

    grantee = make_user("admin", username="w_grantee")
    BreakGlassEligibility.objects.get_or_create(user=grantee)
    out: dict[str, dict[str, Any]] = {"grant": {}, "ended_grant": {}}
    for where, resource in res.items():
        grant = services.breakglass_open(actor=grantee, resource=resource, minutes=30, reason="r")
        ended = services.breakglass_open(actor=grantee, resource=resource, minutes=1, reason="r")
        BreakGlassGrant.objects.filter(pk=ended.pk).update(
            starts_at=timezone.now() - timedelta(minutes=5),
            ends_at=timezone.now() - timedelta(minutes=4),
        )
        out["grant"][where], out["ended_grant"][where] = grant.pk, ended.pk
    return out


def _history_source(make_user, res, sites) -> dict[str, dict[str, Any]]:
    from audit import history

    source, _model = next(iter(history.sources()))
    return {"history_source": _both(source.name)}


# Executions need the approved requests: order matters.
_NEEDS = {
    "request": {"request", "approved_request", "policy", "execution"},
    "execution": {"execution"},
    "grant": {"grant", "ended_grant"},
    "history_source": {"history_source"},
}
_BUILDERS: dict[str, Callable[..., dict[str, dict[str, Any]]]] = {
    "request": _requests,
    "execution": _executions,
    "grant": _grants,
    "history_source": _history_source,
}
