"""One exception handler: field errors become 400, illegal transitions 409, nothing leaks as 500."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class IllegalTransition(Exception):
    """Raised by a state machine when a move is not allowed from the current state."""

    def __init__(self, current_state: str, message: str) -> None:
        super().__init__(message)
        self.current_state = current_state
        self.message = message


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, IllegalTransition):
        return Response(
            {"detail": exc.message, "state": exc.current_state}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = ValidationError(detail=detail)
    response = drf_exception_handler(exc, context)
    if response is None and isinstance(exc, IntegrityError):
        logger.warning("integrity error turned into 409", exc_info=exc)
        return Response(
            {"detail": "The change conflicts with the current state of the data."},
            status=status.HTTP_409_CONFLICT,
        )
    return response
