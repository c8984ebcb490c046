"""The body of `GET /stats` (msgspec Structs)."""

from __future__ import annotations

import msgspec


class BucketStats(msgspec.Struct, frozen=True):
    total: int
    completed: int


class PriorityStats(msgspec.Struct, frozen=True):
    low: BucketStats
    medium: BucketStats
    high: BucketStats


class Stats(msgspec.Struct, frozen=True):
    total: int
    completed: int
    pending: int
    completion_rate: float  # completed / total, 0 when there are no tasks
    by_priority: PriorityStats
