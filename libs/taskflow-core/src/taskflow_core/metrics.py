"""Prometheus metrics of an API: request metrics by route template and the `/metrics` endpoint.

Families: `taskflow_requests_total`, `taskflow_request_duration_seconds`,
`taskflow_requests_in_progress`, `taskflow_requests_error_total` (labels: REQUEST_LABELS), the
cache's (taskflow_core.cache_metrics), the request pool's (taskflow_core.pool_metrics), build and
schema revision (taskflow_core.build_info) and prometheus-client's process collector. Probes and
`/metrics` itself are not measured (taskflow_core.request_observer records the requests).
`/metrics` answers in OpenMetrics when the scraper asks for it (Prometheus does): only that
format carries the latency histogram's exemplars (the trace id of a sampled request).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from taskflow_core.build_info import BUILD_INFO, SCHEMA_REVISION
from taskflow_core.cache_metrics import CACHE_METRIC_FAMILIES
from taskflow_core.pool_metrics import POOL_METRIC_FAMILIES

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
    *POOL_METRIC_FAMILIES,
    BUILD_INFO,
    SCHEMA_REVISION,
    # prometheus-client's process collector: CPU and memory per pod against its requests.
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
)
# Upper bounds in seconds, from the reference run's latencies (bench/reference.json, README.md
# "Metrics"): 1-2.5 ms an unloaded request, 2.5-50 ms the p50s under load, 0.1-0.3 s the
# p99s (0.3 = the loadgen's default p99 limit), then DB_POOL_TIMEOUT's 2 s and the 15 s
# statement timeout, beyond which no request runs.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 15.0,
)  # fmt: skip
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
                    buckets=LATENCY_BUCKETS,
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


class MetricsController(Controller):
    """`GET /metrics`: Prometheus text, or OpenMetrics (with exemplars) when asked for it by the
    Accept header; not in the API document, not measured itself."""

    path = "/metrics"
    include_in_schema = False
    opt = NOT_OBSERVED

    @get(sync_to_thread=False)
    def scrape(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(REGISTRY), media_type=content_type)
