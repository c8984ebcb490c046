"""OpenTelemetry traces of an API: one server span per request, named by its route template,
with a child span per asyncpg statement and per Redis command.

Tracing is wired only when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces variant) is set: without an
exporter no span could leave the process, so none is started and asyncpg and redis-py stay
unpatched. With one, the SDK's sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG; default
parentbased_always_on) decides per trace, and an incoming W3C `traceparent` (nginx, the loadgen)
is continued through the configured propagators (OTEL_PROPAGATORS).

The server span is started by taskflow_core.request_observer, which already knows the route
template, rather than by the ASGI instrumentation's middleware: measured with
`python -m bench --tracing`, that middleware's work on every request — sampled or not — cost more
CPU than many of the requests themselves (README.md, "Observability"). A request that is not
sampled suppresses the client instrumentation, so its statements create no spans either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

SERVER_ERROR = 500
PROPAGATED_HEADERS = (b"traceparent", b"tracestate", b"baggage")


def exporter_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracer_provider(service: str) -> TracerProvider:
    """A provider named for the service that exports over OTLP/HTTP (the configured endpoint)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # TracerProvider() reads OTEL_TRACES_SAMPLER and its argument from the environment.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def instrument_clients(provider: TracerProvider) -> None:
    """asyncpg statements and Redis commands become child spans of the request's span."""
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)


def uninstrument_clients() -> None:
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().uninstrument()


class RequestTracer:
    """Server spans of one app, from its provider: `start` before the app, `end` after it."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer(__name__)

    def start(
        self, method: str, route: str, path: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> tuple[Span, object]:
        """The request's server span, made current (its detach token returned with it)."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in PROPAGATED_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        span = self._tracer.start_span(f"{method} {route}", context=parent, kind=SpanKind.SERVER)
        current = trace.set_span_in_context(span, parent)
        if span.is_recording():
            span.set_attributes(
                {"http.request.method": method, "http.route": route, "url.path": path}
            )
        else:
            # No child spans for a trace nobody keeps (what suppress_instrumentation() sets).
            current = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, current)
        return span, context.attach(current)

    @staticmethod
    def end(span: Span, token: object, status: int) -> None:
        context.detach(token)  # type: ignore[arg-type]
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            if status >= SERVER_ERROR:
                span.set_status(Status(StatusCode.ERROR))
        span.end()
