"""Fixtures for the approvals tests: the shipped policies, approvers, requests in any state."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps

from approvals import services
from approvals.models import BreakGlassEligibility, ExecutionRequest

TICKET = "CHG0012345"


@pytest.fixture
def default_policies(db) -> None:
    """The policies the data migration ships (re-created: a transactional test flushes them)."""
    migration = importlib.import_module("approvals.migrations.0002_default_policies")
    migration.create_defaults(apps, None)


@pytest.fixture
def people(make_user) -> dict[str, Any]:
    """Requester and approvers: ``both`` holds both approver roles."""
    return {
        "op": make_user("operator", username="op"),
        "op2": make_user("operator", username="op2"),
        "it": make_user("approver_it", username="it1"),
        "it2": make_user("approver_it", username="it2"),
        "biz": make_user("approver_business", username="biz1"),
        "biz2": make_user("approver_business", username="biz2"),
        "both": make_user("approver_it", "approver_business", username="both1"),
        "both2": make_user("approver_it", "approver_business", username="both2"),
        "admin": make_user("admin", username="adm"),
        "viewer": make_user("viewer", username="view"),
        "auditor": make_user("auditor", username="aud"),
    }


@pytest.fixture
def resource(make_resource) -> Any:
    return make_resource("orders-db")


@pytest.fixture
def make_request(default_policies, people, sites, resource) -> Callable[..., ExecutionRequest]:
    def make(**kwargs: Any) -> ExecutionRequest:
        values: dict[str, Any] = {
            "actor": people["op"],
            "kind": "switchover",
            "target_site": sites["west"],
            "reason": "quarterly switchover",
            "change_ticket": TICKET,
        }
        values.update(kwargs)
        if "group" not in values:
            values.setdefault("resource", resource)
        return services.request_create(**values)

    return make


@pytest.fixture
def approved(make_request, people) -> ExecutionRequest:
    request = make_request()
    services.request_approve(request, actor=people["it"], comment="ok")
    services.request_approve(request, actor=people["biz"], comment="ok")
    request.refresh_from_db()
    assert request.state == "approved"
    return request


@pytest.fixture
def eligible(people) -> Any:
    BreakGlassEligibility.objects.create(user=people["op"], note="on-call DBA")
    return people["op"]
