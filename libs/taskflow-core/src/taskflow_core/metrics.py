"""Prometheus metrics of an API: request metrics by route template and the `/metrics` endpoint.

Families: `taskflow_requests_total`, `taskflow_request_duration_seconds`,
`taskflow_requests_in_progress`, `taskflow_requests_error_total` (labels: REQUEST_LABELS) and
the cache's (taskflow_core.cache_metrics). Probes and `/metrics` itself are not measured
(taskflow_core.request_observer records the requests).
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusController
from prometheus_client import Counter, Gauge, Histogram

from taskflow_core.cache_metrics import CACHE_METRIC_FAMILIES

METRICS_PREFIX = "taskflow"
# Routes carrying this opt key are left out of request metrics, traces and the access log.
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
SERVER_ERROR = 500


class RequestMetrics:
    """The request families, registered once per process; label children per service."""

    _families: tuple[Counter, Histogram, Gauge, Counter] | None = None

    def __init__(self, service: str) -> None:
        self.service = service
        self.total, self.duration, self.running, self.errors = self._register()
        # Every family is present from the first scrape, before any request.
        for family in (self.total, self.duration, self.running, self.errors):
            family.labels("", "", "", service)

    @classmethod
    def _register(cls) -> tuple[Counter, Histogram, Gauge, Counter]:
        if cls._families is None:
            labels = list(REQUEST_LABELS)
            cls._families = (
                Counter(f"{METRICS_PREFIX}_requests_total", "Total requests", labels),
                Histogram(
                    f"{METRICS_PREFIX}_request_duration_seconds",
                    "Request duration, in seconds",
                    labels,
                ),
                Gauge(
                    f"{METRICS_PREFIX}_requests_in_progress",
                    "Total requests currently in progress",
                    labels,
                    multiprocess_mode="livesum",
                ),
                Counter(
                    f"{METRICS_PREFIX}_requests_error_total", "Total errors in requests", labels
                ),
            )
        return cls._families

    def in_progress(self, method: str, route: str) -> Gauge:
        # status_code 200 while running, as Litestar's middleware labelled it (dashboards).
        return self.running.labels(method, route, "200", self.service)

    def done(
        self, method: str, route: str, status: int
    ) -> tuple[Counter, Histogram, Counter | None]:
        values = (method, route, str(status), self.service)
        errors = self.errors.labels(*values) if status >= SERVER_ERROR else None
        return self.total.labels(*values), self.duration.labels(*values), errors


class MetricsController(PrometheusController):
    """`GET /metrics` in Prometheus text; not in the API document, not measured itself."""

    include_in_schema = False
    opt = NOT_OBSERVED
