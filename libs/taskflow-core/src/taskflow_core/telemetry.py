"""Metrics, traces and logs: Prometheus middleware config, OpenTelemetry setup, structlog JSON."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from litestar import Request
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from litestar.types import ASGIApp
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from taskflow_core.cache_metrics import CACHE_METRIC_FAMILIES

METRICS_PREFIX = "taskflow"
# Routes carrying this opt key are left out of request metrics and traces (probes, /metrics).
EXCLUDE_OPT_KEY = "exclude_from_telemetry"
NOT_OBSERVED = {EXCLUDE_OPT_KEY: True}
UNOBSERVED_URLS = frozenset({"/health", "/ready", "/metrics"})
UNOBSERVED_PATHS = [f"^{url}$" for url in sorted(UNOBSERVED_URLS)]

# Every metric family a TaskFlow service exports (the dashboards are cross-checked against it).
EXPORTED_METRICS: tuple[str, ...] = (
    f"{METRICS_PREFIX}_requests_total",
    f"{METRICS_PREFIX}_request_duration_seconds",
    f"{METRICS_PREFIX}_requests_in_progress",
    f"{METRICS_PREFIX}_requests_error_total",
    *CACHE_METRIC_FAMILIES,
)
REQUEST_LABELS = ("method", "path", "status_code", "app_name")


class TaskflowPrometheusMiddleware(PrometheusMiddleware):
    """Creates every request metric up front so each family is present from the first scrape."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        labels: dict[str, str | int | float] = dict.fromkeys(REQUEST_LABELS, "")
        self.request_count(labels)
        self.request_time(labels)
        self.requests_in_progress(labels)
        self.requests_error_count(labels)


def prometheus_config(service: str) -> PrometheusConfig:
    return PrometheusConfig(
        app_name=service,
        prefix=METRICS_PREFIX,
        group_path=True,  # label by route template (`/tasks/{task_id}`), never the raw path
        exclude_opt_key=EXCLUDE_OPT_KEY,
        exclude_unhandled_paths=True,
        middleware_class=TaskflowPrometheusMiddleware,
    )


class MetricsController(PrometheusController):
    """`GET /metrics` in Prometheus text; not in the API document, not measured itself."""

    include_in_schema = False
    opt = NOT_OBSERVED


def tracer_provider(service: str) -> TracerProvider:
    """A provider named for the service; spans leave the process only to a set OTLP endpoint."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def opentelemetry_config(provider: TracerProvider) -> OpenTelemetryConfig:
    return OpenTelemetryConfig(
        tracer_provider=provider,
        exclude=UNOBSERVED_PATHS,
        exclude_spans=["receive", "send"],
    )


async def name_span_after_route(request: Request[Any, Any, Any]) -> None:
    """The ASGI span starts before routing; rename it to the route template once it is known."""
    span = trace.get_current_span()
    template = request.scope.get("path_template")
    if span.is_recording() and template:
        span.update_name(f"{request.method} {template}")
        span.set_attribute("http.route", template)


def add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Log lines inside a request carry its trace and span ids (logs and traces correlate)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def configure_logging(level: str) -> None:
    """JSON lines on stdout from structlog and stdlib loggers (uvicorn, litestar, sqlalchemy)."""
    numeric = logging.getLevelNamesMapping()[level]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Structured tracebacks without frame locals: locals may hold headers or secrets.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.filters[:] = [ProbeAccessFilter()]


class ProbeAccessFilter(logging.Filter):
    """Drops access-log lines of probes and scrapes: every few seconds per pod, never news."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) > 2 and args[2] in UNOBSERVED_URLS)
