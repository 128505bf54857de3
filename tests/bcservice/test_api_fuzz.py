"""Property-based fuzzing of the REST API from the committed OpenAPI schema (docs/openapi.yaml).

Schemathesis generates requests for every operation, valid ones and ones that break the schema,
and sends them in-process through Django's WSGI handler with an API token. Whatever it sends,
the answer must not be a 5xx (house rule: bad input gets a 400, never a 500), and JSON
answers must match the schema's content type and, for documented statuses, its body.

Path ids are drawn from objects seeded for the run (sites, resources, a group, requests in two
states, an execution, break-glass grants) plus one id that exists nowhere, so the fuzz reaches
the code behind the 404. Everything happens in the test's transaction and is rolled back.

Bounded for the normal suite (a few examples per operation, derandomized so a CI run is
repeatable). For an exploratory pass, widen it:
``BC_FUZZ_EXAMPLES=200 BC_FUZZ_ROLES=all BC_FUZZ_RANDOM=1 pytest tests/bcservice/test_api_fuzz.py``
"""

from __future__ import annotations

import importlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from django.apps import apps
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bcservice.accounts.services import api_token_create

pytestmark = pytest.mark.django_db

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# "norole" is a user without a role; "anonymous" sends a token that matches nobody.
ALL_ROLES = (
    "viewer",
    "operator",
    "approver_it",
    "approver_business",
    "admin",
    "auditor",
    "norole",
    "anonymous",
)
DEFAULT_ROLES = ("admin", "operator", "auditor")
MAX_EXAMPLES = int(os.environ.get("BC_FUZZ_EXAMPLES", "6"))
_roles_env = os.environ.get("BC_FUZZ_ROLES", "")
ROLES = (
    ALL_ROLES
    if _roles_env == "all"
    else tuple(filter(None, _roles_env.split(","))) or DEFAULT_ROLES
)
MISSING_ID = 987654321

# Nothing listens here: a collection or precheck the fuzz triggers fails fast, without a lab.
DEAD_TARGET = {"primary_host": "127.0.0.1", "primary_port": 9, "dr_host": "127.0.0.1", "dr_port": 9}

# Which seeded objects a path's ``{id}`` names, by the path's first segment under /api/v1/.
ID_KIND = {
    "sites": "site",
    "resources": "resource",
    "groups": "group",
    "requests": "request",
    "executions": "execution",
    "breakglass": "grant",
    "policies": "policy",
}


def _seed(make_user: Any, make_resource: Any, sites: dict[str, Any]) -> dict[str, list[Any]]:
    """A small world with one object of every kind a path can name; returns kind -> ids."""
    from approvals import services as approvals
    from approvals.models import BreakGlassEligibility, BreakGlassGrant
    from audit import history
    from executions.models import Execution
    from inventory.models import ResourceGroup
    from inventory.services import group_set_members

    importlib.import_module("approvals.migrations.0002_default_policies").create_defaults(
        apps, None
    )
    requester = make_user("operator", username="fz_requester")
    it, biz = make_user("approver_it", username="fz_it"), make_user("approver_business")
    resources = [
        make_resource(f"fz-db-{n}", connection=dict(DEAD_TARGET), tier=tier)
        for n, tier in ((1, 2), (2, 1))
    ]
    group = ResourceGroup.objects.create(name="fz-group", tier=1)
    group_set_members(actor=None, group=group, resources=resources)
    requests = []
    for resource in resources:
        request = approvals.request_create(
            actor=requester,
            kind="switchover",
            resource=resource,
            target_site=sites["west"],
            reason="fuzz",
            change_ticket="CHG0012345",
        )
        requests.append(request)
    approved = requests[1]
    approvals.request_approve(approved, actor=it, comment="ok")
    approvals.request_approve(approved, actor=biz, comment="ok")
    approved.refresh_from_db()
    execution = Execution.objects.create(request=approved, kind=approved.kind, started_by=requester)
    grantee = make_user("admin", username="fz_grantee")
    BreakGlassEligibility.objects.get_or_create(user=grantee)
    grant = approvals.breakglass_open(
        actor=grantee, resource=resources[0], minutes=30, reason="fuzz"
    )
    ended = approvals.breakglass_open(actor=grantee, resource=resources[0], minutes=1, reason="r")
    BreakGlassGrant.objects.filter(pk=ended.pk).update(
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() - timedelta(minutes=4),
    )
    return {
        "site": [s.pk for s in sites.values()],
        "resource": [r.pk for r in resources],
        "group": [group.pk],
        "request": [r.pk for r in requests],
        "execution": [execution.pk],
        "grant": [grant.pk, ended.pk],
        "policy": sorted({r.policy_id for r in requests}),
        "history_source": [source.name for source, _model in history.sources()],
    }


def _schema_with_ids(ids: dict[str, list[Any]]) -> dict[str, Any]:
    """The committed schema, with each ``{id}``/``{name}`` path parameter limited to seeded
    objects and one that does not exist (the fuzz would otherwise hit only 404s)."""
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    for path, item in schema["paths"].items():
        head = path.removeprefix("/api/v1/").split("/")[0]
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for param in operation.get("parameters", []):
                if param.get("in") != "path":
                    continue
                if param["name"] == "id" and head in ID_KIND:
                    param["schema"] = {
                        "type": "integer",
                        "enum": [*ids[ID_KIND[head]], MISSING_ID],
                    }
                elif param["name"] == "name" and head == "audit":
                    param["schema"] = {"type": "string", "enum": [*ids["history_source"], "nope"]}
    return schema


@pytest.fixture
def wsgi_app() -> Any:
    """Django's WSGI handler, minus the per-request connection recycling that would close the
    test's transaction (Django's own test client disconnects it the same way)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # Thousands of 4xx warnings say nothing here; a 500 is still logged (ERROR) and fails the run.
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)
    try:
        # Not get_wsgi_application(): django.setup() again would reconfigure logging.
        yield WSGIHandler()
    finally:
        request_log.setLevel(level)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(make_user, make_resource, sites) -> dict[str, Any]:
    ids = _seed(make_user, make_resource, sites)
    tokens = {}
    for role in ROLES:
        if role == "anonymous":
            tokens[role] = "bct_not-a-token-of-anyone"
            continue
        user = make_user(*([] if role == "norole" else [role]), username=f"fz_{role}")
        tokens[role] = api_token_create(actor=None, user=user, name="fuzz")[1]
    return {"ids": ids, "tokens": tokens}


@pytest.fixture
def api_schema(fuzz_world, wsgi_app) -> Any:
    schema = schemathesis.openapi.from_dict(_schema_with_ids(fuzz_world["ids"]))
    schema.app = wsgi_app
    return schema


CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
if os.environ.get("BC_FUZZ_STRICT"):
    # Exploration only: drf-spectacular documents no 4xx, so every refusal is "undocumented".
    CHECKS += [status_code_conformance]


def _checks(case: Any) -> list[Any]:
    """Bodies are checked for JSON answers only (``?format=csv|jsonl|html`` answer text)."""
    if (case.query or {}).get("format") in (None, "json"):
        return CHECKS
    return [check for check in CHECKS if check is not response_schema_conformance]


MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _fuzz_operation(operation: Any, mode: GenerationMode, tokens: dict[str, str]) -> None:
    """Send ``MAX_EXAMPLES`` generated cases of one operation, each once per role."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("BC_FUZZ_RANDOM"),
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    )
    def run(case: Any) -> None:
        for role, token in tokens.items():
            try:
                case.call_and_validate(
                    headers={"Authorization": f"Token {token}"}, checks=_checks(case)
                )
            except BaseException as exc:
                exc.add_note(f"sent as role {role!r}")
                raise

    run()


def test_no_request_gets_a_server_error(api_schema, fuzz_world, subtests):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    only = os.environ.get("BC_FUZZ_ONLY", "")
    operations = [op for op in operations if only in op.label]
    assert len(operations) >= (40 if not only else 1), "the schema lost its operations"
    for operation in operations:
        # An operation without parameters or body has nothing to break: no negative mode.
        # (The token and session headers come from the security schemes and are overridden.)
        negatable = bool(operation.body) or any(
            param.location in ("path", "query") for param in operation.iter_parameters()
        )
        for mode in MODES if negatable else MODES[:1]:
            with subtests.test(msg=f"{operation.label} {mode.value}"):
                _fuzz_operation(operation, mode, fuzz_world["tokens"])
