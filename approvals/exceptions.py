"""Domain errors of the approvals app; the API maps them to 403 and 409 with a reason code."""

from __future__ import annotations

from bcservice.api.exceptions import IllegalTransition


class ApprovalRefused(Exception):
    """The person may not do this (requester voting, wrong role, not eligible): HTTP 403."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RequestNotStartable(IllegalTransition):
    """The request may not start now; ``code`` says why (HTTP 409 with the current state)."""

    def __init__(self, current_state: str, code: str, message: str) -> None:
        super().__init__(current_state, message)
        self.code = code


class VoteConflict(IllegalTransition):
    """A vote that conflicts with the request's state or an existing vote: HTTP 409."""

    def __init__(self, current_state: str, code: str, message: str) -> None:
        super().__init__(current_state, message)
        self.code = code
