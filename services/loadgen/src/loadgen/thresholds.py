"""Threshold verdicts over a report's counts and histograms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadgen.config import Thresholds


def verdict(name: str, scope: str, value: float | None, limit: float) -> dict[str, Any]:
    """A gate passes when its value is at or below the limit; no value (no samples) passes."""
    return {
        "threshold": name,
        "scope": scope,
        "value": value,
        "limit": limit,
        "passed": value is None or value <= limit,
    }


def evaluate(
    endpoints: Mapping[str, Mapping[str, Any]], miss_rate: float, thresholds: Thresholds
) -> list[dict[str, Any]]:
    """p99 and error rate for every endpoint that sent something, then the schedule-miss rate."""
    verdicts = []
    for name, endpoint in endpoints.items():
        if endpoint["sent"] == 0:
            continue
        p99 = endpoint["latency_ms"]["p99"]
        verdicts.append(verdict("p99_ms", name, p99, thresholds.p99_ms.for_endpoint(name)))
        rate = endpoint["error_rate"]
        verdicts.append(verdict("error_rate", name, rate, thresholds.error_rate.for_endpoint(name)))
    verdicts.append(verdict("miss_rate", "schedule", miss_rate, thresholds.miss_rate))
    return verdicts
