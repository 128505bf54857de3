"""Approvals models: policies, requests and their votes, break-glass, request schedules."""

from approvals.models.breakglass import BreakGlassEligibility, BreakGlassGrant
from approvals.models.policy import ApprovalPolicy
from approvals.models.request import Approval, ExecutionRequest
from approvals.models.schedule import Schedule, ScheduledOccurrence

__all__ = [
    "Approval",
    "ApprovalPolicy",
    "BreakGlassEligibility",
    "BreakGlassGrant",
    "ExecutionRequest",
    "Schedule",
    "ScheduledOccurrence",
]
