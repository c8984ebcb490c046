"""Resident memory of each process of a server's tree over time, and its trend."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import PAGE_BYTES

MIB = 2**20


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float  # since the watch began
    phase: str
    server: str
    role: str  # "supervisor", "worker" (granian's child), "worker 2", ...
    rss_mib: float


def process_rss(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[21]) * PAGE_BYTES / MIB


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def roles(pid: int) -> dict[str, int]:
    """The supervisor and its workers, by role."""
    found = {"supervisor": pid}
    for index, child in enumerate(sorted(children(pid))):
        found["worker" if index == 0 else f"worker {index + 1}"] = child
    return found


@dataclass
class RssWatch:
    """Samples every process of each server every `interval` seconds, in a thread."""

    servers: Mapping[str, int]  # name -> supervisor pid
    interval: float = 0.5
    phase: str = "start"
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssWatch:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def sample(self) -> list[Sample]:
        now = time.monotonic() - self._started
        taken = []
        for server, pid in self.servers.items():
            for role, member in roles(pid).items():
                try:
                    taken.append(Sample(now, self.phase, server, role, process_rss(member)))
                except OSError:
                    continue  # a worker being replaced
        self.samples.extend(taken)
        return taken

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def series(self, server: str, role: str) -> list[Sample]:
        return [s for s in self.samples if s.server == server and s.role == role]


def trend_mib_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    return slope * 3600
