"""/metrics for Prometheus, read from the live counters at scrape time (nothing on the hot path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from loadgen.histogram import PERCENTILES

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from loadgen.stats import RunStats
    from loadgen.timeline import Timeline


class LoadgenCollector(Collector):
    """Counters per endpoint and outcome, schedule misses, latency quantiles and the HPA view."""

    def __init__(self, stats: RunStats, rates: list[float]) -> None:
        self.stats = stats
        self.rates = rates
        self.timeline: Timeline | None = None

    def collect(self) -> Iterator[Metric]:
        yield from self._requests()
        yield from self._schedule()
        if self.timeline is not None:
            yield from self._hpa(self.timeline)

    def _requests(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "loadgen_requests",
            "Requests completed, by endpoint and outcome",
            labels=["endpoint", "outcome"],
        )
        latency = GaugeMetricFamily(
            "loadgen_latency_seconds",
            "Latency from the scheduled send time since the start (HDR quantiles)",
            labels=["endpoint", "quantile"],
        )
        for name, endpoint in list(self.stats.endpoints.items()):
            requests.add_metric([name, "ok"], endpoint.ok)
            for kind, count in list(endpoint.errors.items()):
                requests.add_metric([name, kind], count)
            if endpoint.latency.get_total_count():
                for key, pct in PERCENTILES.items():
                    seconds = endpoint.latency.get_value_at_percentile(pct) / 1e6
                    latency.add_metric([name, key.removeprefix("p")], seconds)
        yield requests
        yield latency

    def _schedule(self) -> Iterator[Metric]:
        stats = self.stats
        scheduled = CounterMetricFamily("loadgen_scheduled", "Sends scheduled")
        scheduled.add_metric([], stats.scheduled)
        misses = CounterMetricFamily(
            "loadgen_schedule_misses", "Sends that missed the schedule", labels=["reason"]
        )
        misses.add_metric(["late"], stats.late)
        misses.add_metric(["inflight_cap"], stats.dropped)
        inflight = GaugeMetricFamily("loadgen_inflight", "Requests in flight")
        inflight.add_metric([], stats.inflight)
        target = GaugeMetricFamily(
            "loadgen_target_rate", "Target arrival rate of the current stage"
        )
        target.add_metric([], self.rates[stats.stage_index] if self.rates else 0.0)
        yield from (scheduled, misses, inflight, target)

    def _hpa(self, timeline: Timeline) -> Iterator[Metric]:
        labels = ["deployment", "hpa"]
        gauges = {
            "desired": GaugeMetricFamily(
                "loadgen_hpa_desired_replicas", "HPA desiredReplicas", labels=labels
            ),
            "current": GaugeMetricFamily(
                "loadgen_hpa_current_replicas", "HPA currentReplicas", labels=labels
            ),
            "ready": GaugeMetricFamily(
                "loadgen_deployment_ready_replicas", "Deployment readyReplicas", labels=labels
            ),
            "cpu_utilization": GaugeMetricFamily(
                "loadgen_hpa_cpu_utilization_percent",
                "CPU utilisation the HPA saw (% of request)",
                labels=labels,
            ),
        }
        for name, state in list(timeline.autoscaled().items()):
            for field, gauge in gauges.items():
                value = getattr(state, field)
                if value is not None:
                    gauge.add_metric([name, state.hpa or ""], value)
        yield from gauges.values()


def serve_metrics(port: int, collector: LoadgenCollector) -> WSGIServer | None:
    """Start the /metrics server (port 0: disabled); returns the server for shutdown."""
    if port == 0:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _thread = start_http_server(port, registry=registry)
    return server
