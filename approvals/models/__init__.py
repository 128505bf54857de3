"""Approvals models: policies, requests and their votes, break-glass eligibility and grants."""

from approvals.models.breakglass import BreakGlassEligibility, BreakGlassGrant
from approvals.models.policy import ApprovalPolicy
from approvals.models.request import Approval, ExecutionRequest

__all__ = [
    "Approval",
    "ApprovalPolicy",
    "BreakGlassEligibility",
    "BreakGlassGrant",
    "ExecutionRequest",
]
