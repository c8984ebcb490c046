"""OpenTelemetry traces of an API: one server span per request, named by its route template.

Tracing is wired only when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces variant) is set: without an
exporter no span could leave the process, and creating them cost about a tenth of a request's CPU
(README.md, "Performance"). With one, the SDK's sampler (OTEL_TRACES_SAMPLER) decides per trace.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Request
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from opentelemetry import trace
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

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


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
