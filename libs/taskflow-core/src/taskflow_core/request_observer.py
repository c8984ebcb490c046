"""One ASGI middleware observes every request once: its route template, status and duration go
to the Prometheus request metrics and to the access log (taskflow_core.access_log). When tracing,
it runs the request inside its server span (taskflow_core.tracing), and the duration of a sampled
request carries its trace id as an exemplar.

Probes and `/metrics` (routes carrying EXCLUDE_OPT_KEY) are neither measured nor logged. It is
the lean equivalent of Litestar's PrometheusMiddleware with the same families and labels: label
children are looked up once per (method, route, status), not built on every request.
"""

from __future__ import annotations

import time
from typing import Any, cast

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from opentelemetry.trace import Span
from prometheus_client import Counter, Gauge, Histogram

from taskflow_core.access_log import AccessLog, trace_id_of
from taskflow_core.metrics import EXCLUDE_OPT_KEY, RequestMetrics
from taskflow_core.tracing import RequestTracer


class RequestObserver(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]
    exclude_opt_key = EXCLUDE_OPT_KEY

    def __init__(
        self, metrics: RequestMetrics, access_log: AccessLog, tracer: RequestTracer | None = None
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.tracer = tracer
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
        span: Span | None = None
        if self.tracer is not None:
            span, token = self.tracer.start(method, route, scope["path"], scope["headers"])
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
            trace_id, span_id = _trace_ids(span, scope)
            if span is not None:
                RequestTracer.end(span, token, status)
                duration.observe(seconds, {"trace_id": trace_id} if trace_id and span_id else None)
            else:
                duration.observe(seconds)
            if errors is not None:
                errors.inc()
            self.access_log.request(
                method, scope["path"], route, status, seconds, _client(scope), trace_id, span_id
            )


def _trace_ids(span: Span | None, scope: Scope) -> tuple[str | None, str | None]:
    """The span's ids when it is sampled (exported); else the caller's trace id, if it sent one:
    a request that arrives with a traceparent logs its trace id even when nothing is recorded."""
    if span is not None:
        context = span.get_span_context()
        if context.trace_flags.sampled:
            return format(context.trace_id, "032x"), format(context.span_id, "016x")
    traceparent = _traceparent(scope)
    return (trace_id_of(traceparent) if traceparent is not None else None), None


def _traceparent(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return value
    return None


def _client(scope: Scope) -> str | None:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
