"""From a request to per-resource plans: which connector, which target, which steps.

Planning does no I/O against the targets and fetches no credentials; the credentials callable
it builds resolves the resource's secret reference only when a step asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from approvals import scope
from approvals.models import ExecutionRequest
from connectors import secrets
from connectors.collection import build_target
from connectors.contract import NotSupported, PlanStep, Support, Target
from connectors.registry import UnknownPlatform, get_connector
from inventory.models import Resource


@dataclass
class ResourcePlan:
    resource: Resource
    target: Target
    promote_site: str
    steps: list[PlanStep]


class StepCredentials:
    """Resolves the secret reference each time a step asks (never cached), and remembers the
    values it handed out, in memory only, so that step output can be scrubbed of them."""

    def __init__(self, secret_ref: str) -> None:
        self._ref = secret_ref
        self.seen: set[str] = set()

    def __call__(self, purpose: str) -> Mapping[str, str]:
        values = secrets.resolve(self._ref, purpose)
        self.seen.update(v for v in values.values() if isinstance(v, str) and len(v) >= 4)
        return values


def _credentials(resource: Resource) -> StepCredentials:
    return StepCredentials(resource.secret_ref)


def scope_resources(request: ExecutionRequest) -> list[Resource]:
    """The scope's resources in dependency order (a group's position order)."""
    return scope.members(resource=request.resource, group=request.group)


def promote_site_for(request: ExecutionRequest, resource: Resource) -> str:
    """Which configured site of ``resource`` ends up primary: the request's target site."""
    return "primary" if request.target_site_id == resource.primary_site_id else "dr"


def plan_resource(request: ExecutionRequest, resource: Resource) -> ResourcePlan:
    """Raise NotSupported with the connector's reason when the kind cannot run here."""
    try:
        connector = get_connector(resource.platform)
    except UnknownPlatform as exc:
        raise NotSupported(str(exc)) from exc
    target = build_target(resource, _credentials(resource))
    capability = connector.capabilities(target).get(request.kind)
    if capability is None or capability.support == Support.NO:
        reason = capability.reason if capability else "not declared by the connector"
        raise NotSupported(f"{resource.name}: {request.kind} is not supported ({reason})")
    steps = connector.plan(request.kind, target)
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise NotSupported(f"{resource.name}: the connector's plan repeats a step name")
    return ResourcePlan(resource, target, promote_site_for(request, resource), steps)


def plan_request(request: ExecutionRequest) -> list[ResourcePlan]:
    return [plan_resource(request, resource) for resource in scope_resources(request)]
