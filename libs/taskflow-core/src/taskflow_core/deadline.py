"""One deadline for all of a request's database work.

`request_deadlines` (an ASGI middleware) gives every HTTP request an unstarted deadline; the
request pool starts it at the request's first connection and every later connection of the same
request (a cache generation read, then the page) draws on what is left. Without the middleware
(scripts, tests) each connection gets a bound of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send


class _Deadline:
    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: float | None = None  # loop time; set by the request's first connection


_CURRENT: ContextVar[_Deadline | None] = ContextVar("taskflow_request_deadline", default=None)


def deadline_for(now: float, bound: float) -> float:
    """The current request's deadline (started now if it had none), else `now + bound`."""
    current = _CURRENT.get()
    if current is None:
        return now + bound
    if current.at is None:
        current.at = now + bound
    return current.at


@contextmanager
def request_deadline() -> Iterator[None]:
    """One unit of work (a request) whose database uses share one deadline."""
    token = _CURRENT.set(_Deadline())
    try:
        yield
    finally:
        _CURRENT.reset(token)


def request_deadlines(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: every request gets a deadline of its own, started by its first
    database use. A plain ASGI wrapper: nothing to exclude, so none of ASGIMiddleware's checks."""

    async def with_deadline(scope: Scope, receive: Receive, send: Send) -> None:
        token = _CURRENT.set(_Deadline())
        try:
            await app(scope, receive, send)
        finally:
            _CURRENT.reset(token)

    return with_deadline
