"""Request id middleware: every request gets an id, echoed in ``X-Request-ID`` and logged."""

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from bcservice import request_context

# Accept a caller's id only if it is short and plain, so nothing hostile reaches the logs.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(self.header, "")
        rid = incoming if _SAFE_ID.match(incoming) else request_context.new_request_id()
        with request_context.bind("web", rid):
            request.request_id = rid
            response = self.get_response(request)
        response[self.header] = rid
        return response
