"""The request pool's Prometheus families, computed when /metrics is scraped.

A custom collector reads `RequestPool.stats()` at scrape time, so the request path pays only the
plain integer updates it already makes. Families (label `app_name` = service, as the request
families): `taskflow_db_pool_connections{state}` (in_use, idle, overflow — overflow is the part of
in_use beyond DB_POOL_SIZE), `taskflow_db_pool_max_connections`, `taskflow_db_pool_waits_total`
(checkouts that found every connection in use) and `taskflow_db_pool_timeouts_total` (waits that
hit DB_POOL_TIMEOUT and were answered 503).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from taskflow_core.engine import RequestPool

POOL_CONNECTIONS = "taskflow_db_pool_connections"
POOL_MAX_CONNECTIONS = "taskflow_db_pool_max_connections"
POOL_WAITS = "taskflow_db_pool_waits"
POOL_TIMEOUTS = "taskflow_db_pool_timeouts"
# Family names as they appear in a scrape (counters get the `_total` suffix).
POOL_METRIC_FAMILIES = (
    POOL_CONNECTIONS,
    POOL_MAX_CONNECTIONS,
    f"{POOL_WAITS}_total",
    f"{POOL_TIMEOUTS}_total",
)


class PoolCollector(Collector):
    """The pools of this process by service (one per API process; the latest app wins)."""

    def __init__(self) -> None:
        self.pools: dict[str, RequestPool] = {}

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        connections = GaugeMetricFamily(
            POOL_CONNECTIONS,
            "Request pool connections by state (overflow: in use beyond DB_POOL_SIZE)",
            labels=["app_name", "state"],
        )
        most = GaugeMetricFamily(
            POOL_MAX_CONNECTIONS,
            "Request pool size limit (DB_POOL_SIZE + DB_MAX_OVERFLOW)",
            labels=["app_name"],
        )
        waits = CounterMetricFamily(
            POOL_WAITS, "Checkouts that found every pooled connection in use", labels=["app_name"]
        )
        timeouts = CounterMetricFamily(
            POOL_TIMEOUTS,
            "Checkouts that waited past DB_POOL_TIMEOUT (answered 503)",
            labels=["app_name"],
        )
        for service, pool in sorted(self.pools.items()):
            stats = pool.stats()
            connections.add_metric([service, "in_use"], stats.in_use)
            connections.add_metric([service, "idle"], stats.idle)
            connections.add_metric([service, "overflow"], stats.overflow)
            most.add_metric([service], stats.max_connections)
            waits.add_metric([service], stats.waits)
            timeouts.add_metric([service], stats.timeouts)
        yield from (connections, most, waits, timeouts)


# Registered once per process, as prometheus-client wants; apps add their pools to it.
POOLS = PoolCollector()
REGISTRY.register(POOLS)


def watch_pool(service: str, pool: RequestPool) -> None:
    """Export `pool` as `service`'s."""
    POOLS.pools[service] = pool
