"""Where the current request id and change context live while a request, task or command runs.

The audit log records the correlation id and the context (web, worker, cli) of every event; log
lines carry the same id. A ``ContextVar`` keeps them correct across threads and async code.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class ChangeContext:
    request_id: str
    source: str  # web, worker, cli, system


_current: ContextVar[ChangeContext | None] = ContextVar("bc_change_context", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> ChangeContext:
    ctx = _current.get()
    return ctx if ctx is not None else ChangeContext(request_id="", source="system")


@contextmanager
def bind(source: str, request_id: str | None = None) -> Iterator[ChangeContext]:
    ctx = ChangeContext(request_id=request_id or new_request_id(), source=source)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
