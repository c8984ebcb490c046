"""The /stats cache key carries the body's format, derived from the Stats struct."""

from __future__ import annotations

import msgspec
from stats_api.schemas import PriorityStats, Stats
from stats_api.service import STATS_CACHE_KEY
from taskflow_core.cache import body_format


class StatsWithOverdue(msgspec.Struct, frozen=True):
    total: int
    completed: int
    pending: int
    completion_rate: float
    by_priority: PriorityStats
    overdue: int  # a field a later release might add


def test_the_key_is_the_format_of_the_stats_body() -> None:
    assert STATS_CACHE_KEY == f"stats:{body_format(Stats)}"
    assert body_format(StatsWithOverdue) != body_format(Stats)
