"""StatsService: the figures of `GET /stats` from task_counts, through the Redis cache."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import msgspec
from taskflow_core.cache import Cache, body_format
from taskflow_core.engine import RequestPool
from taskflow_core.models import Priority

from stats_api.queries import STATS_QUERY
from stats_api.schemas import BucketStats, PriorityStats, Stats

# The key carries the body's format: old and new pods share Redis during a rollout.
STATS_CACHE_KEY = f"stats:{body_format(Stats)}"
_ENCODER = msgspec.json.Encoder()
_PRIORITY = {p.value: p for p in Priority}


class StatsService:
    """One per app (the `stats_service` dependency)."""

    def __init__(self, pool: RequestPool, cache: Cache) -> None:
        self._pool = pool
        self._cache = cache

    async def stats_body(self) -> bytes:
        """The JSON body of /stats, from the cache when the database has not changed."""
        return await self._cache.fetch_current(self._pool, STATS_CACHE_KEY, load_stats)


async def load_stats(conn: asyncpg.Connection) -> bytes:
    """The JSON body of /stats from the six count rows."""
    rows = await conn.fetch(STATS_QUERY)
    return _ENCODER.encode(build_stats((_PRIORITY[p], c, t) for p, c, t in rows))


def build_stats(rows: Iterable[tuple[Priority, bool, int]]) -> Stats:
    totals = dict.fromkeys(Priority, 0)
    completed = dict.fromkeys(Priority, 0)
    for priority, is_completed, count in rows:
        totals[priority] += count
        if is_completed:
            completed[priority] += count
    total = sum(totals.values())
    done = sum(completed.values())
    buckets = {p.value: BucketStats(total=totals[p], completed=completed[p]) for p in Priority}
    return Stats(
        total=total,
        completed=done,
        pending=total - done,
        completion_rate=done / total if total else 0.0,
        by_priority=PriorityStats(**buckets),
    )
