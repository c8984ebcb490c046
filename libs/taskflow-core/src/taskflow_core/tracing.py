"""OpenTelemetry traces of an API: one server span per request, named by its route template,
with a child span per asyncpg statement and per Redis command.

Tracing is wired only when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces variant) is set: without an
exporter no span could leave the process, and creating them cost about a tenth of a request's CPU
(README.md, "Performance"); asyncpg and redis-py stay unpatched then. With one, the SDK's sampler
(OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG; default parentbased_always_on) decides per trace,
and an incoming W3C `traceparent` (nginx, the loadgen) is continued.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Request
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from taskflow_core.logs import QUIET_PATHS

UNTRACED_PATHS = [f"^{path}$" for path in sorted(QUIET_PATHS)]


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


def opentelemetry_config(provider: TracerProvider) -> OpenTelemetryConfig:
    return OpenTelemetryConfig(
        tracer_provider=provider,
        exclude=UNTRACED_PATHS,
        exclude_spans=["receive", "send"],
    )


async def name_span_after_route(request: Request[Any, Any, Any]) -> None:
    """The ASGI span starts before routing; rename it to the route template once it is known."""
    span = trace.get_current_span()
    template = request.scope.get("path_template")
    if span.is_recording() and template:
        span.update_name(f"{request.method} {template}")
        span.set_attribute("http.route", template)
