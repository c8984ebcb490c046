"""Prometheus metrics of the Redis cache, registered once per process in the default registry."""

from __future__ import annotations

import enum

from prometheus_client import Counter, Gauge

CACHE_REQUESTS = "taskflow_cache_requests"
CACHE_BREAKER_OPEN = "taskflow_cache_breaker_open"
# Family names as they appear in a /metrics scrape (counters get the `_total` suffix).
CACHE_METRIC_FAMILIES = (f"{CACHE_REQUESTS}_total", CACHE_BREAKER_OPEN)


class CacheResult(enum.StrEnum):
    HIT = "hit"  # served from Redis
    MISS = "miss"  # Redis answered "no such key"; loaded from the database and stored
    ERROR = "error"  # Redis failed or timed out; served from the database
    BYPASS = "bypass"  # Redis not touched (cache off, breaker open, client pool full)


cache_requests = Counter(
    CACHE_REQUESTS,
    "Cache lookups by outcome",
    ["app_name", "result"],
)
cache_breaker_open = Gauge(
    CACHE_BREAKER_OPEN,
    "1 while the Redis circuit breaker keeps requests away from Redis",
    ["app_name"],
    multiprocess_mode="max",
)
