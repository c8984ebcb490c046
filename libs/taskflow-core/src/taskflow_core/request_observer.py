"""One ASGI middleware observes every request once: its route template, status and duration go
to the Prometheus request metrics and to the access log (taskflow_core.access_log). When tracing,
the duration of a sampled request carries its trace id as an exemplar.

Probes and `/metrics` (routes carrying EXCLUDE_OPT_KEY) are neither measured nor logged. It is
the lean equivalent of Litestar's PrometheusMiddleware with the same families and labels: label
children are looked up once per (method, route, status), not built on every request.
"""

from __future__ import annotations

import time
from typing import Any, cast

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from taskflow_core.access_log import AccessLog
from taskflow_core.metrics import EXCLUDE_OPT_KEY, RequestMetrics


class RequestObserver(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]
    exclude_opt_key = EXCLUDE_OPT_KEY

    def __init__(
        self, metrics: RequestMetrics, access_log: AccessLog, exemplars: bool = False
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.exemplars = exemplars
        self._done: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter | None]] = {}
        self._running: dict[tuple[str, str], Gauge] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method: str = cast("HTTPScope", scope)["method"]  # scopes = ("http",)
        route: str = scope.get("path_template") or scope["path"]
        status = 500  # what the client gets when the app raises before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        running = self._running.get((method, route))
        if running is None:
            running = self._running[(method, route)] = self.metrics.in_progress(method, route)
        running.inc()
        started = time.perf_counter()
        try:
            await next_app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            running.dec()
            done = self._done.get((method, route, status))
            if done is None:
                done = self._done[(method, route, status)] = self.metrics.done(
                    method, route, status
                )
            total, duration, errors = done
            total.inc()
            duration.observe(seconds, _exemplar() if self.exemplars else None)
            if errors is not None:
                errors.inc()
            self.access_log.request(
                method, scope["path"], route, status, seconds, _client(scope), _traceparent(scope)
            )


def _exemplar() -> dict[str, str] | None:
    """The trace id of the request's span when it is sampled (exported), else none."""
    context = trace.get_current_span().get_span_context()
    return {"trace_id": format(context.trace_id, "032x")} if context.trace_flags.sampled else None


def _traceparent(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return value
    return None


def _client(scope: Scope) -> str | None:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
