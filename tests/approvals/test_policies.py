"""Policy resolution (most specific wins), shipped defaults, snapshots and role coverage."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from approvals import policies
from approvals.models import ApprovalPolicy
from approvals.policies import Vote

IT, BIZ = "approver_it", "approver_business"


@pytest.mark.django_db
def test_defaults_are_shipped_by_the_data_migration():
    # Not the fixture: these rows come from migrations/0002_default_policies.py.
    rows = {(p.tier, p.kind, p.environment): p for p in ApprovalPolicy.objects.all()}
    tier1 = rows[(1, "", "")]
    assert tier1.min_approvers == 2 and sorted(tier1.required_roles) == sorted([IT, BIZ])
    assert tier1.require_change_ticket and tier1.change_ticket_pattern == r"^(CHG|INC)\d{6,}$"
    assert tier1.approval_validity_minutes == 240 and tier1.flap_window_minutes == 30
    tier2 = rows[(2, "", "")]
    assert (tier2.min_approvers, tier2.required_roles, tier2.require_change_ticket) == (
        1,
        [IT],
        True,
    )
    for key in [(3, "", ""), (1, "", "staging"), (2, "", "test"), (1, "", "development")]:
        assert rows[key].min_approvers == 1 and not rows[key].required_roles
        assert not rows[key].require_change_ticket
    assert ApprovalPolicy.history.filter(history_type="+").count() == len(rows)


def _policy(name: str, tier: int, kind: str = "", environment: str = "", **kw) -> ApprovalPolicy:
    return ApprovalPolicy.objects.create(
        name=name, tier=tier, kind=kind, environment=environment, **kw
    )


@pytest.fixture
def table(db):
    ApprovalPolicy.objects.all().delete()
    _policy("t1", 1)
    _policy("t1-staging", 1, environment="staging")
    _policy("t1-drill", 1, kind="drill")
    _policy("t1-drill-staging", 1, kind="drill", environment="staging")
    _policy("t2-failover", 2, kind="failover")
    _policy("t3-test", 3, environment="test")


@pytest.mark.parametrize(
    ("tier", "kind", "environment", "expected"),
    [
        (1, "switchover", "production", "t1"),
        (1, "failover", "staging", "t1-staging"),
        (1, "drill", "production", "t1-drill"),
        # kind and environment both named: the most specific wins
        (1, "drill", "staging", "t1-drill-staging"),
        # kind beats environment when each matches one policy
        (1, "drill", "test", "t1-drill"),
        (2, "failover", "production", "t2-failover"),
        (2, "switchover", "production", None),  # no policy: fail closed
        (3, "failover", "test", "t3-test"),
        (3, "failover", "production", None),
    ],
)
def test_resolution_table(table, tier, kind, environment, expected):
    found = policies.resolve(tier=tier, kind=kind, environment=environment)
    assert (found.name if found else None) == expected


@pytest.mark.django_db
def test_policy_validation():
    bad = ApprovalPolicy(
        name="x",
        tier=1,
        min_approvers=1,
        required_roles=[IT, BIZ, "admin"],
        change_ticket_pattern="([",
    )
    with pytest.raises(ValidationError) as err:
        bad.full_clean()
    assert {"required_roles", "change_ticket_pattern"} <= set(err.value.message_dict)
    short = ApprovalPolicy(name="y", tier=1, min_approvers=1, required_roles=[IT, BIZ])
    with pytest.raises(ValidationError) as err:
        short.full_clean()
    assert "min_approvers" in err.value.message_dict


@pytest.mark.django_db
def test_fingerprint_changes_with_rules_not_with_name(default_policies):
    policy = ApprovalPolicy.objects.get(tier=1, kind="", environment="")
    base = policies.fingerprint(policies.snapshot(policy))
    policy.name = "renamed"
    assert policies.fingerprint(policies.snapshot(policy)) == base
    policy.min_approvers = 3
    assert policies.fingerprint(policies.snapshot(policy)) != base


TIER1 = {"min_approvers": 2, "required_roles": [BIZ, IT]}


@pytest.mark.parametrize(
    ("votes", "satisfied"),
    [
        # two people each holding both roles: one covers IT, the other business
        ([Vote(1, frozenset({IT, BIZ})), Vote(2, frozenset({IT, BIZ}))], True),
        # one person with both roles, alone, is one person: not enough
        ([Vote(1, frozenset({IT, BIZ}))], False),
        # the same person twice (two tokens) is still one person
        ([Vote(1, frozenset({IT, BIZ})), Vote(1, frozenset({IT, BIZ}))], False),
        # two IT approvers leave business uncovered
        ([Vote(1, frozenset({IT})), Vote(2, frozenset({IT}))], False),
        ([Vote(1, frozenset({IT})), Vote(2, frozenset({BIZ}))], True),
        # greedy would give "both" IT and fail; the matching gives them business
        ([Vote(1, frozenset({IT, BIZ})), Vote(2, frozenset({IT}))], True),
        ([Vote(2, frozenset({IT})), Vote(1, frozenset({IT, BIZ}))], True),
        # no approver role: does not count at all
        ([Vote(1, frozenset({"admin"})), Vote(2, frozenset({IT}))], False),
    ],
)
def test_role_coverage(votes, satisfied):
    assert policies.evaluate(TIER1, votes).satisfied is satisfied


def test_vote_would_help_only_when_it_closes_a_gap():
    votes = [Vote(1, frozenset({IT}))]
    assert not policies.vote_would_help(TIER1, votes, Vote(2, frozenset({IT})))
    assert policies.vote_would_help(TIER1, votes, Vote(3, frozenset({BIZ})))
    assert policies.vote_would_help(TIER1, votes, Vote(4, frozenset({IT, BIZ})))
    assert not policies.vote_would_help(TIER1, votes, Vote(1, frozenset({BIZ})))  # same person


@pytest.mark.parametrize(
    ("required", "pattern", "ticket", "ok"),
    [
        (True, r"^(CHG|INC)\d{6,}$", "CHG0012345", True),
        (True, r"^(CHG|INC)\d{6,}$", "INC123456", True),
        (True, r"^(CHG|INC)\d{6,}$", "", False),
        (True, r"^(CHG|INC)\d{6,}$", "CHG12", False),
        (True, r"^(CHG|INC)\d{6,}$", "chg0012345", False),
        (True, r"^(CHG|INC)\d{6,}$", "CHG0012345\n", False),
        (False, r"^(CHG|INC)\d{6,}$", "", True),
        (False, r"^(CHG|INC)\d{6,}$", "nonsense", False),  # optional, but checked when given
        (True, "", "anything", True),
    ],
)
def test_ticket_rules(required, pattern, ticket, ok):
    snap = {"require_change_ticket": required, "change_ticket_pattern": pattern, "name": "p"}
    assert (not policies.ticket_errors(snap, ticket)) is ok
