"""Live counters of a run: per endpoint, per stage, and the schedule itself."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from loadgen.histogram import new_histogram, record_seconds

ERROR_KINDS = ("http_4xx", "http_5xx", "connect", "timeout", "reset", "other")
SLOWEST_TRACED = 5  # traced requests kept per endpoint, the slowest


def status_kind(status: int) -> str | None:
    """None for a success (< 400), else the error kind of the HTTP status class."""
    if status < 400:
        return None
    return "http_4xx" if status < 500 else "http_5xx"


@dataclass
class EndpointStats:
    """Counts and latency (from the scheduled send time) of one endpoint of the mix."""

    sent: int = 0
    ok: int = 0
    late: int = 0
    dropped: int = 0
    retries: int = 0  # resends of a request whose connection failed (creates, same key)
    errors: Counter[str] = field(default_factory=Counter)
    latency: HdrHistogram = field(default_factory=new_histogram)
    # (seconds, trace id, status or error kind) of the slowest traced requests, a min-heap
    slowest: list[tuple[float, str, str]] = field(default_factory=list)

    def record_traced(self, seconds: float, trace_id: str, outcome: str) -> None:
        """Keep the request if it is among the SLOWEST_TRACED slowest traced ones."""
        entry = (seconds, trace_id, outcome)
        if len(self.slowest) < SLOWEST_TRACED:
            heapq.heappush(self.slowest, entry)
        elif seconds > self.slowest[0][0]:
            heapq.heapreplace(self.slowest, entry)

    def record(self, seconds: float | None, error: str | None) -> None:
        """seconds is None when no response arrived (connect/timeout/reset)."""
        if seconds is not None:
            record_seconds(self.latency, seconds)
        if error is None:
            self.ok += 1
        else:
            self.errors[error] += 1


@dataclass
class StageStats:
    """What one stage scheduled and what actually left."""

    rate: float
    duration: float
    scheduled: int = 0
    sent: int = 0
    late: int = 0
    dropped: int = 0
    last_send: float = 0.0  # seconds after the stage's scheduled start


@dataclass
class RunStats:
    """Everything the report and /metrics read; mutated only on the event loop."""

    endpoints: dict[str, EndpointStats]
    stages: list[StageStats]
    lag: HdrHistogram = field(default_factory=new_histogram)
    scheduled: int = 0
    inflight: int = 0
    stage_index: int = 0

    @property
    def sent(self) -> int:
        return sum(e.sent for e in self.endpoints.values())

    @property
    def late(self) -> int:
        return sum(e.late for e in self.endpoints.values())

    @property
    def dropped(self) -> int:
        return sum(e.dropped for e in self.endpoints.values())

    @property
    def completed(self) -> int:
        return sum(e.ok + sum(e.errors.values()) for e in self.endpoints.values())
