"""The RBAC matrix: every route in the OpenAPI schema × every principal × in/out-of-scope object.

The table below is the access policy in one place. For each route it names the roles that pass
(anonymous is never among them except on public routes) and, for routes naming an object, the
kind of object. The test asserts:
- a role not in ``allow``: 401 when anonymous, otherwise 403 (or 404 for an object it cannot see);
- a role in ``allow`` on an object it may see: not 401, 403 or 404 (400 and 409 are the view's
  business: the permission layer let it through), never 500;
- a scoped role on an object outside its scope: 404 (hidden, not merely refused).
Write routes get an empty body, so "allowed" usually ends in a 400 and changes nothing.

``test_every_route_is_in_the_matrix`` fails when the schema has a route the table lacks (or the
table a route the schema lost), and prints the missing rows ready to paste.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.identity.rbac_world import PRINCIPALS, ROLES, SCOPED_ROLES, World, build_world

pytestmark = pytest.mark.django_db

EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
OPERATOR = frozenset({"operator"})
OPERATOR_ADMIN = frozenset({"operator", "admin"})
APPROVERS = frozenset({"approver_it", "approver_business"})
AUDIT = frozenset({"admin", "auditor"})
LOGGED_IN = frozenset({"norole", *ROLES})
PUBLIC = frozenset(PRINCIPALS)
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    allow: frozenset[str]
    obj: str | None = None  # the kind of object in the path ({id} or {name})
    query: str = ""  # may name objects: "{resource}" is the in-scope resource's id
    note: str = ""


# (METHOD, path as in the schema) -> Rule
MATRIX: dict[tuple[str, str], Rule] = {
    # identity
    ("GET", "/api/v1/me/"): Rule(LOGGED_IN),
    ("GET", "/api/v1/auth/options/"): Rule(PUBLIC),
    # inventory
    ("GET", "/api/v1/sites/"): Rule(EVERYONE),
    ("POST", "/api/v1/sites/"): Rule(ADMIN),
    ("GET", "/api/v1/sites/{id}/"): Rule(EVERYONE, "site"),
    ("PATCH", "/api/v1/sites/{id}/"): Rule(ADMIN, "site"),
    ("GET", "/api/v1/resources/"): Rule(EVERYONE),
    ("POST", "/api/v1/resources/"): Rule(ADMIN),
    ("GET", "/api/v1/resources/{id}/"): Rule(EVERYONE, "resource"),
    ("PATCH", "/api/v1/resources/{id}/"): Rule(ADMIN, "resource"),
    ("GET", "/api/v1/resources/{id}/history/"): Rule(EVERYONE, "resource"),
    ("POST", "/api/v1/resources/{id}/collect/"): Rule(OPERATOR_ADMIN, "resource"),
    ("GET", "/api/v1/groups/"): Rule(EVERYONE),
    ("POST", "/api/v1/groups/"): Rule(ADMIN),
    ("GET", "/api/v1/groups/{id}/"): Rule(EVERYONE, "group"),
    ("PATCH", "/api/v1/groups/{id}/"): Rule(ADMIN, "group"),
    ("GET", "/api/v1/status/summary/"): Rule(EVERYONE),
    # approvals
    ("GET", "/api/v1/requests/"): Rule(EVERYONE),
    ("POST", "/api/v1/requests/"): Rule(OPERATOR),
    ("GET", "/api/v1/requests/{id}/"): Rule(EVERYONE, "request"),
    ("POST", "/api/v1/requests/{id}/approve/"): Rule(APPROVERS, "request"),
    ("POST", "/api/v1/requests/{id}/deny/"): Rule(APPROVERS, "request"),
    ("POST", "/api/v1/requests/{id}/cancel/"): Rule(
        ADMIN, "request", note="or the requester, who is nobody's role here"
    ),
    ("POST", "/api/v1/requests/{id}/acknowledge-flapping/"): Rule(ADMIN, "request"),
    ("POST", "/api/v1/requests/{id}/prechecks/"): Rule(OPERATOR, "approved_request"),
    ("POST", "/api/v1/requests/{id}/start/"): Rule(OPERATOR, "approved_request"),
    ("GET", "/api/v1/requests/export/"): Rule(AUDIT),
    ("GET", "/api/v1/policies/"): Rule(EVERYONE),
    ("GET", "/api/v1/policies/{id}/"): Rule(EVERYONE, "policy"),
    ("GET", "/api/v1/policies/preview/"): Rule(
        EVERYONE, query="?kind=switchover&resource={resource}"
    ),
    ("GET", "/api/v1/breakglass/"): Rule(EVERYONE),
    ("POST", "/api/v1/breakglass/"): Rule(OPERATOR_ADMIN),
    ("GET", "/api/v1/breakglass/{id}/"): Rule(EVERYONE, "grant"),
    ("POST", "/api/v1/breakglass/{id}/close/"): Rule(
        ADMIN, "grant", note="or the grantee, who is nobody's role here"
    ),
    ("POST", "/api/v1/breakglass/{id}/review/"): Rule(APPROVERS, "ended_grant"),
    # executions
    ("GET", "/api/v1/executions/"): Rule(EVERYONE),
    ("GET", "/api/v1/executions/export/"): Rule(AUDIT),
    ("GET", "/api/v1/executions/{id}/"): Rule(EVERYONE, "execution"),
    ("POST", "/api/v1/executions/{id}/continue/"): Rule(OPERATOR, "execution"),
    ("GET", "/api/v1/requests/{id}/evidence/"): Rule(EVERYONE, "request"),
    ("GET", "/api/v1/reports/readiness/"): Rule(
        EVERYONE, note="scoped to the resources and drills the role may see"
    ),
    # audit: auditors and admins only
    ("GET", "/api/v1/audit/events/"): Rule(AUDIT),
    ("GET", "/api/v1/audit/verify/"): Rule(AUDIT),
    ("GET", "/api/v1/audit/checkpoints/"): Rule(AUDIT),
    ("GET", "/api/v1/audit/public-keys/"): Rule(AUDIT),
    ("GET", "/api/v1/audit/config-history/"): Rule(AUDIT),
    ("GET", "/api/v1/audit/config-history/{name}/"): Rule(AUDIT, "history_source"),
}

# Kinds whose objects the scoped roles can see only inside their scope.
SCOPED_KINDS = {
    "resource",
    "group",
    "request",
    "approved_request",
    "execution",
    "grant",
    "ended_grant",
}


def schema_routes() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_every_route_is_in_the_matrix():
    routes = schema_routes()
    missing = sorted(routes - set(MATRIX), key=lambda r: (r[1], r[0]))
    stale = sorted(set(MATRIX) - routes, key=lambda r: (r[1], r[0]))
    lines = []
    if missing:
        lines.append("Routes in the OpenAPI schema with no row in MATRIX (add them):")
        lines += [f'    ("{m}", "{p}"): Rule(<roles>, <object kind or None>),' for m, p in missing]
    if stale:
        lines.append("Rows in MATRIX for routes the schema no longer has (remove or rename):")
        lines += [f"    {m} {p}" for m, p in stale]
    assert not lines, "\n".join(lines)


def _client(world: World, principal: str) -> APIClient:
    client = APIClient()
    if principal != "anonymous":
        client.force_authenticate(world.users[principal])
    return client


def _url(world: World, path: str, rule: Rule, where: str) -> str:
    if rule.obj is not None:
        ident = world.ident(rule.obj, where)
        path = path.replace("{id}", str(ident)).replace("{name}", str(ident))
    query = rule.query.replace("{resource}", str(world.ident("resource", "in")))
    return path + query


def _expected(principal: str, rule: Rule, where: str) -> str:
    """'allow', 'hidden' (404) or 'deny' (401 anonymous, else 403; 404 also denies)."""
    if principal not in rule.allow:
        return "deny"
    if where == "out" and principal in SCOPED_ROLES and rule.obj in SCOPED_KINDS:
        return "hidden"
    return "allow"


def _verdict(principal: str, expected: str, status: int) -> str | None:
    if status >= 500:
        return f"server error {status}"
    if expected == "allow" and status in (401, 403, 404):
        return f"refused ({status}) but should be allowed"
    if expected == "hidden" and status != 404:
        return f"got {status}, an object outside the scope should be 404"
    if expected == "deny":
        wanted = {401} if principal == "anonymous" else {403, 404}
        if status not in wanted:
            return f"got {status}, should be refused ({' or '.join(map(str, sorted(wanted)))})"
    return None


@pytest.mark.parametrize(
    ("method", "path"), sorted(MATRIX, key=lambda r: (r[1], r[0])), ids=lambda v: v
)
def test_route_access_for_every_principal(make_user, make_resource, sites, method, path):
    rule = MATRIX[(method, path)]
    world = build_world(make_user, make_resource, sites, need=rule.obj)
    if rule.obj is not None and rule.obj not in world.objects:
        pytest.fail(f"no {rule.obj!r} object could be built: {world.missing}", pytrace=False)
    wheres = ("in", "out") if rule.obj in SCOPED_KINDS else ("in",)
    problems: list[str] = []
    # Denials first: an allowed call may change the object (an approval, a cancel), never
    # what a role may do, but the order keeps the report about roles rather than states.
    order = sorted(PRINCIPALS, key=lambda p: p in rule.allow)
    for where in wheres:
        for principal in order:
            url = _url(world, path, rule, where)
            client = _client(world, principal)
            if method == "GET":
                response = client.get(url)
            else:
                response = getattr(client, method.lower())(url, {}, format="json")
            expected = _expected(principal, rule, where)
            problem = _verdict(principal, expected, response.status_code)
            if problem:
                problems.append(f"{principal:>17} {where:>3}-scope {method} {url}: {problem}")
    assert not problems, "\n".join(problems)
