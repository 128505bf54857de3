"""Writes of the approvals app. Import from here; the submodules split the work by concern.

For the executions app: ``request_check_startable``, ``request_mark_running`` and
``request_mark_finished`` (see approvals/services/start.py).
"""

from approvals.services.breakglass import (
    breakglass_close,
    breakglass_open,
    breakglass_review,
    is_eligible,
    max_minutes,
)
from approvals.services.config import (
    eligibility_delete,
    eligibility_save,
    policy_delete,
    policy_save,
)
from approvals.services.requests import (
    request_acknowledge_flapping,
    request_cancel,
    request_create,
    request_refresh,
    requests_expire_due,
    requests_refresh_all,
)
from approvals.services.schedule_runs import schedules_run_due
from approvals.services.schedules import schedule_delete, schedule_save
from approvals.services.start import (
    request_check_startable,
    request_mark_finished,
    request_mark_running,
    start_basis,
)
from approvals.services.transitions import transition
from approvals.services.votes import request_approve, request_deny

__all__ = [
    "breakglass_close",
    "breakglass_open",
    "breakglass_review",
    "eligibility_delete",
    "eligibility_save",
    "is_eligible",
    "max_minutes",
    "policy_delete",
    "policy_save",
    "request_acknowledge_flapping",
    "request_approve",
    "request_cancel",
    "request_check_startable",
    "request_create",
    "request_deny",
    "request_mark_finished",
    "request_mark_running",
    "request_refresh",
    "requests_expire_due",
    "requests_refresh_all",
    "schedule_delete",
    "schedule_save",
    "schedules_run_due",
    "start_basis",
    "transition",
]
