"""What the harness measures: the ceiling's routes, the APIs' endpoints, and each endpoint's
ceiling and target (a ratio within one run)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

POST_BODY = '{"title": "bench task", "priority": "high"}'
PAGE_1M_ROWS = 1_000_000


class App(enum.StrEnum):
    CEILING = "ceiling"
    TASKS = "tasks-api"
    TASKS_UNCACHED = "tasks-api (cache off)"
    STATS = "stats-api"
    STATS_UNCACHED = "stats-api (cache off)"


class Goal(enum.StrEnum):
    RATE = "req/s"  # req/s of the case >= target x req/s of its ceiling
    P50 = "p50"  # p50 of the case <= target x p50 of its ceiling (here: page 1)


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    endpoint: str
    app: App
    path: str
    method: str = "GET"
    body: str = ""
    ceiling: str | None = None  # key of the case this one is compared with
    target: float | None = None
    goal: Goal = Goal.RATE
    writes: bool = False  # runs after every read (it grows the table)
    min_rows: int = 0  # only at data sets of at least this size

    @property
    def cache(self) -> str:
        if self.app in {App.TASKS, App.STATS}:
            return "on"
        if self.app in {App.TASKS_UNCACHED, App.STATS_UNCACHED}:
            return "off"
        return "-"


CEILINGS = (
    Case("json", "constant JSON", App.CEILING, "/json"),
    Case("rows50", "asyncpg 50-row read + msgspec", App.CEILING, "/rows50"),
    Case("counts", "asyncpg six count rows", App.CEILING, "/counts"),
    Case("redis-page", "Redis GET of a page", App.CEILING, "/redis-page"),
    Case("hit-floor", "generation read + Redis GET", App.CEILING, "/hit-floor"),
    Case("insert", "INSERT ... RETURNING", App.CEILING, "/insert", "POST", POST_BODY,
         writes=True),
)  # fmt: skip

API_CASES = (
    Case("health", "GET /health", App.TASKS, "/health", ceiling="json", target=0.75),
    Case("page-hit", "GET /tasks?priority=high", App.TASKS, "/tasks?priority=high",
         ceiling="hit-floor", target=0.6),
    Case("page-miss", "GET /tasks?priority=high", App.TASKS_UNCACHED, "/tasks?priority=high",
         ceiling="rows50", target=0.6),
    Case("stats-hit", "GET /stats", App.STATS, "/stats", ceiling="hit-floor", target=0.6),
    Case("stats-miss", "GET /stats", App.STATS_UNCACHED, "/stats", ceiling="counts",
         target=0.6),
    Case("page-1", "GET /tasks (page 1)", App.TASKS_UNCACHED, "/tasks",
         min_rows=PAGE_1M_ROWS),
    Case("page-10000", "GET /tasks (page 10,000)", App.TASKS_UNCACHED, "/tasks?cursor={cursor}",
         ceiling="page-1", target=1.5, goal=Goal.P50, min_rows=PAGE_1M_ROWS),
    Case("post", "POST /tasks", App.TASKS_UNCACHED, "/tasks", "POST", POST_BODY,
         ceiling="insert", target=0.5, writes=True),
)  # fmt: skip


def cases_for(rows: int) -> list[Case]:
    """Every case at a data set of `rows` tasks; reads first, writes last."""
    chosen = [c for c in (*CEILINGS, *API_CASES) if rows >= c.min_rows]
    return sorted(chosen, key=lambda c: c.writes)
