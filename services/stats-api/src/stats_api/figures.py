"""Statistics from task_counts: six rows kept exact by triggers, whatever the size of tasks."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from taskflow_core.schema import Priority, TaskCount

from stats_api.schema import BucketStats, PriorityStats, Stats

# One row per (priority, completed): the cost does not grow with the number of tasks.
STATS_QUERY: Select[Priority, bool, int] = select(
    TaskCount.priority, TaskCount.completed, TaskCount.total
)


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


async def load_stats(session: AsyncSession) -> bytes:
    """The JSON body of /stats, read in the caller's transaction."""
    rows = (await session.execute(STATS_QUERY)).all()
    return msgspec.json.encode(build_stats(rows))
