"""What `GET /scaling` must show while the stub Kubernetes API replays
tests/support/data/hpa-watch-2-10-2.json, and a poll that waits for it with a deadline.

current = Deployment status.replicas, desired = HPA status.desiredReplicas, ready = Deployment
status.readyReplicas, cpu = the HPA's measured CPU utilisation (target 50 %, 2-10 replicas).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

FOLLOW_SECONDS = 1.0  # the contract: /scaling follows the watch within a second

Service = dict[str, int | None]


def service(current: int, desired: int, ready: int, cpu: int) -> Service:
    return {
        "min_replicas": 2,
        "max_replicas": 10,
        "current_replicas": current,
        "desired_replicas": desired,
        "ready_replicas": ready,
        "cpu_utilization_percent": cpu,
        "target_cpu_utilization_percent": 50,
    }


# Before the replay starts (the recording's lists).
AT_START = {"tasks-api": service(2, 2, 2, 3), "stats-api": service(2, 2, 2, 2)}
# (replay position in seconds, both services then): tasks-api 2 -> 6 -> 10 -> 2.
STEPS: list[tuple[float, dict[str, Service]]] = [
    (0.7, {"tasks-api": service(6, 6, 2, 210), "stats-api": service(2, 2, 2, 2)}),
    (1.6, {"tasks-api": service(10, 10, 10, 160), "stats-api": service(4, 8, 4, 110)}),
    (2.7, {"tasks-api": service(10, 10, 10, 72), "stats-api": service(10, 10, 10, 60)}),
    (4.6, {"tasks-api": service(2, 2, 2, 3), "stats-api": service(2, 2, 2, 2)}),
]


def wait_for_services(base_url: str, services: dict[str, Service], within: float) -> float:
    """Poll `base_url`/scaling until its services are `services`; the seconds it took."""
    start = time.monotonic()
    body: Any = None
    while time.monotonic() - start < within:
        body = httpx.get(f"{base_url}/scaling", timeout=5).json()
        if body["services"] == services:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"/scaling did not show {services} within {within}s; last: {body}")
