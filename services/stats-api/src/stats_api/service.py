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
_PRIORITIES = tuple(p.value for p in Priority)


class StatsService:
    """One per app (the `stats_service` dependency)."""

    def __init__(self, pool: RequestPool, cache: Cache) -> None:
        self._pool = pool
        self._cache = cache
        # The last rows read and their body: most reads find the counts unchanged.
        self._rows: list[asyncpg.Record] = []
        self._body = b""

    async def stats_body(self) -> bytes:
        """The JSON body of /stats, from the cache when the database has not changed."""
        return await self._cache.fetch_current(self._pool, STATS_CACHE_KEY, self._load)

    async def _load(self, conn: asyncpg.Connection) -> bytes:
        """`load_stats`, encoding again only when a count changed (every call reads the rows)."""
        rows = await conn.fetch(STATS_QUERY)
        if rows != self._rows:
            self._rows, self._body = rows, encode_stats(rows)
        return self._body


async def load_stats(conn: asyncpg.Connection) -> bytes:
    """The JSON body of /stats from the six count rows."""
    return encode_stats(await conn.fetch(STATS_QUERY))


def encode_stats(rows: Iterable[tuple[str, bool, int]]) -> bytes:
    return _ENCODER.encode(build_stats(rows))


def build_stats(rows: Iterable[tuple[str, bool, int]]) -> Stats:
    """The figures from (priority, completed, count) rows; priorities by name (str keys hash
    faster than Enum members, and this runs on every uncached /stats)."""
    totals = dict.fromkeys(_PRIORITIES, 0)
    completed = dict.fromkeys(_PRIORITIES, 0)
    for priority, is_completed, count in rows:
        totals[priority] += count
        if is_completed:
            completed[priority] += count
    total = sum(totals.values())
    done = sum(completed.values())
    buckets = {name: BucketStats(totals[name], completed[name]) for name in _PRIORITIES}
    return Stats(
        total=total,
        completed=done,
        pending=total - done,
        completion_rate=done / total if total else 0.0,
        by_priority=PriorityStats(**buckets),
    )
