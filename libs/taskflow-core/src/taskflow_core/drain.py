"""Draining after SIGTERM, in the worker: every response says `Connection: close`, /ready is 503.

The kubelet sends SIGTERM to the supervisor (taskflow_core.server), which passes it on to its
worker as DRAIN_SIGNAL and only stops the worker DRAIN_SECONDS later. Meanwhile the worker keeps
accepting and answering, so a request a client (nginx, kube-proxy's last packets) sent on an open
keep-alive connection still gets its full response, and that response tells the client to close
the connection. granian itself offers no such phase: on its own SIGTERM it stops accepting at
once and closes idle keep-alive connections, whatever a client was about to send on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_SIGNAL = signal.SIGUSR1
_CLOSE = (b"connection", b"close")

log = structlog.get_logger("taskflow.drain")


class DrainState:
    """Whether this process is draining; set once by DRAIN_SIGNAL, never unset."""

    def __init__(self) -> None:
        self.draining = False

    def begin(self) -> None:
        if not self.draining:
            self.draining = True
            log.info("draining: /ready is 503, every response closes its connection")


STATE = DrainState()


def listen(state: DrainState = STATE) -> None:
    """Make DRAIN_SIGNAL start the drain (only the main thread's loop can take signals)."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(DRAIN_SIGNAL, state.begin)


class ConnectionClose:
    """ASGI wrapper adding `Connection: close` to every response started while draining."""

    def __init__(self, handler: ASGIApp, state: DrainState = STATE) -> None:
        self._handler = handler
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._handler(scope, receive, send)
            return
        state = self._state

        async def send_closing(message: Message) -> None:
            # Checked at the response's start: a request begun before SIGTERM closes too.
            if state.draining and message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), _CLOSE]
                message = {**message, "headers": headers}
            await send(message)

        await self._handler(scope, receive, send_closing)
