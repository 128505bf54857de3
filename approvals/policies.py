"""Policy rules as plain functions: which policy applies, its frozen snapshot and fingerprint,
change-ticket checks, and whether a set of votes satisfies it (the two-person rule and role
coverage by distinct people). No writes here; services call these under their row locks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from approvals.models import ApprovalPolicy
from bcservice.roles import APPROVER_ROLES

# Fields of a policy that decide what a request needs; a change to any of them (or a different
# policy applying) changes the fingerprint and voids approvals given under the old one.
RULE_FIELDS = (
    "tier",
    "kind",
    "environment",
    "min_approvers",
    "required_roles",
    "require_change_ticket",
    "change_ticket_pattern",
    "approval_validity_minutes",
    "flap_window_minutes",
    "allow_precheck_override",
    "allow_scheduled_start",
)


def resolve(*, tier: int, kind: str, environment: str) -> ApprovalPolicy | None:
    """The most specific policy for (tier, kind, environment), or None when none applies.

    Specificity: a policy naming the kind beats one naming only the environment, which beats
    one naming neither; naming both beats everything. The unique constraint on
    (tier, kind, environment) means there is never a tie.
    """
    candidates = ApprovalPolicy.objects.filter(
        tier=tier, kind__in=[kind, ""], environment__in=[environment, ""]
    )

    def specificity(policy: ApprovalPolicy) -> int:
        return (2 if policy.kind else 0) + (1 if policy.environment else 0)

    return max(candidates, key=specificity, default=None)


def snapshot(policy: ApprovalPolicy) -> dict[str, Any]:
    """The frozen copy stored on a request: the rules plus the policy's id and name."""
    data: dict[str, Any] = {name: getattr(policy, name) for name in RULE_FIELDS}
    data["required_roles"] = sorted(data["required_roles"] or [])
    data["id"] = policy.pk
    data["name"] = policy.name
    return data


# Rule fields added after requests already existed: they enter the fingerprint only when set,
# so an upgrade that adds one (off by default) does not void approvals given before it.
_FINGERPRINT_WHEN_SET = frozenset({"allow_scheduled_start"})


def fingerprint(policy_snapshot: Mapping[str, Any]) -> str:
    """Hash of the rules and the policy id; the name is cosmetic and left out."""
    data = {
        k: policy_snapshot.get(k)
        for k in (*RULE_FIELDS, "id")
        if k not in _FINGERPRINT_WHEN_SET or policy_snapshot.get(k)
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def ticket_errors(policy_snapshot: Mapping[str, Any], ticket: str) -> list[str]:
    ticket = ticket or ""
    if not ticket:
        if policy_snapshot.get("require_change_ticket"):
            name = _name(policy_snapshot)
            return [f"A change ticket is required for this request (policy {name})."]
        return []
    pattern = policy_snapshot.get("change_ticket_pattern") or ""
    if pattern and not re.fullmatch(pattern, ticket):
        return [f"The change ticket does not match the expected format {pattern}."]
    return []


def _name(policy_snapshot: Mapping[str, Any]) -> str:
    return str(policy_snapshot.get("name") or policy_snapshot.get("id"))


@dataclass(frozen=True)
class Vote:
    """A counted approval: who, and the approver roles they held when voting."""

    user_id: int
    roles: frozenset[str]


@dataclass
class Coverage:
    """How far a set of approvals is from satisfying a policy."""

    satisfied: bool
    approvers: int  # distinct people counted
    min_approvers: int
    required_roles: list[str]
    covered: dict[str, int] = field(default_factory=dict)  # role -> user id covering it
    missing_roles: list[str] = field(default_factory=list)
    counted_role: dict[int, str] = field(default_factory=dict)  # user id -> role counted as
    still_needed: int = 0  # fewest additional people that could satisfy the policy


def _match(required: list[str], votes: list[Vote]) -> dict[str, int]:
    """Maximum matching of required roles to distinct voters (augmenting paths; tiny inputs).

    Greedy assignment is wrong here: if Ann holds both roles and Bob only IT, giving Ann IT
    first would leave business uncovered although Ann-business + Bob-IT covers both.
    """
    owner: dict[str, int] = {}  # role -> index in votes

    def augment(vi: int, seen: set[str]) -> bool:
        for role in required:
            if role in votes[vi].roles and role not in seen:
                seen.add(role)
                if role not in owner or augment(owner[role], seen):
                    owner[role] = vi
                    return True
        return False

    for vi in range(len(votes)):
        augment(vi, set())
    return {role: votes[vi].user_id for role, vi in owner.items()}


def evaluate(policy_snapshot: Mapping[str, Any], votes: Iterable[Vote]) -> Coverage:
    """Whether ``votes`` (one per person, requester already excluded) satisfy the policy."""
    distinct: dict[int, Vote] = {}
    for vote in votes:
        # One person, one vote, however many roles or tokens they have.
        distinct.setdefault(vote.user_id, vote)
    counted = [v for v in distinct.values() if v.roles & set(APPROVER_ROLES)]
    required = sorted(set(policy_snapshot.get("required_roles") or []))
    minimum = int(policy_snapshot.get("min_approvers") or 1)
    covered = _match(required, counted)
    missing = [r for r in required if r not in covered]
    counted_role = {user_id: role for role, user_id in covered.items()}
    for vote in counted:
        counted_role.setdefault(vote.user_id, sorted(vote.roles & set(APPROVER_ROLES))[0])
    still_needed = max(minimum - len(counted), len(missing), 0)
    return Coverage(
        satisfied=still_needed == 0,
        approvers=len(counted),
        min_approvers=minimum,
        required_roles=required,
        covered=covered,
        missing_roles=missing,
        counted_role=counted_role,
        still_needed=still_needed,
    )


def vote_would_help(policy_snapshot: Mapping[str, Any], votes: list[Vote], candidate: Vote) -> bool:
    """True when adding ``candidate`` brings the request closer to approval."""
    if not candidate.roles & set(APPROVER_ROLES):
        return False
    if any(v.user_id == candidate.user_id for v in votes):
        return False
    before = evaluate(policy_snapshot, votes).still_needed
    return evaluate(policy_snapshot, [*votes, candidate]).still_needed < before


def describe(policy_snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The summary the API shows: what the policy demands, in plain fields."""
    return {
        "id": policy_snapshot.get("id"),
        "name": policy_snapshot.get("name"),
        "tier": policy_snapshot.get("tier"),
        "kind": policy_snapshot.get("kind") or None,
        "environment": policy_snapshot.get("environment") or None,
        "min_approvers": policy_snapshot.get("min_approvers"),
        "required_roles": list(policy_snapshot.get("required_roles") or []),
        "require_change_ticket": bool(policy_snapshot.get("require_change_ticket")),
        "change_ticket_pattern": policy_snapshot.get("change_ticket_pattern") or "",
        "approval_validity_seconds": int(policy_snapshot.get("approval_validity_minutes") or 0)
        * 60,
        "flap_window_seconds": int(policy_snapshot.get("flap_window_minutes") or 0) * 60,
    }
