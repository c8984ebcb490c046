"""StatsService: the figures of `GET /stats` from task_counts, through the Redis cache."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from taskflow_core.cache import Cache, body_format
from taskflow_core.models import Priority

from stats_api.queries import STATS_QUERY
from stats_api.schemas import BucketStats, PriorityStats, Stats

# The key carries the body's format: old and new pods share Redis during a rollout.
STATS_CACHE_KEY = f"stats:{body_format(Stats)}"


class StatsService:
    def __init__(self, engine: AsyncEngine, cache: Cache) -> None:
        self._engine = engine
        self._cache = cache

    async def stats_body(self) -> bytes:
        """The JSON body of /stats, from the cache when the database has not changed."""
        async with self._engine.connect() as conn:
            return await self._cache.fetch_current(conn, STATS_CACHE_KEY, lambda: load_stats(conn))


def provide_stats_service(
    db_engine: NamedDependency[AsyncEngine], cache: NamedDependency[Cache]
) -> StatsService:
    """The `stats_service` dependency of the /stats handler."""
    return StatsService(db_engine, cache)


async def load_stats(conn: AsyncConnection) -> bytes:
    """The JSON body of /stats from the six count rows."""
    rows = (await conn.execute(STATS_QUERY)).all()
    return msgspec.json.encode(build_stats(rows))


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
