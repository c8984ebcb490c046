"""Prometheus metrics of an API: request metrics by route template and the `/metrics` endpoint.

Families: `taskflow_requests_total`, `taskflow_request_duration_seconds`,
`taskflow_requests_in_progress`, `taskflow_requests_error_total` (labels: REQUEST_LABELS) and
the cache's (taskflow_core.cache_metrics). Probes and `/metrics` itself are not measured.
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from litestar.types import ASGIApp

from taskflow_core.cache_metrics import CACHE_METRIC_FAMILIES

METRICS_PREFIX = "taskflow"
# Routes carrying this opt key are left out of request metrics and traces (probes, /metrics).
EXCLUDE_OPT_KEY = "exclude_from_telemetry"
NOT_OBSERVED = {EXCLUDE_OPT_KEY: True}

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
