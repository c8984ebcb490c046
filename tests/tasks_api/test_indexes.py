"""At 1,000,000 tasks, each filter shape of the default sort reads about one page of rows, on
page 1 and on page 10,000, and /stats reads six rows: EXPLAIN (ANALYZE, BUFFERS) of the very SQL
the APIs send (tasks_api.queries.list_statement / stats_api.queries.STATS_QUERY), prepared as
asyncpg prepares them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest
from stats_api.queries import STATS_QUERY
from taskflow_core.models import Priority
from tasks_api.queries import ListQuery, Position, Statement, list_statement

from devstack.databases import Postgres

pytestmark = pytest.mark.slow

ROWS = 1_000_000
LIMIT = 50
DEEP_OFFSET = 500_000  # page 10,000 of 50 rows starts here
# Reading a page touches its rows, the extra row that tells whether a next page exists, and a
# handful of index pages (root, inner, one or two leaves). When a filter value is common the
# planner may walk a neighbouring index and skip a fraction of its rows: still about one page,
# never a number of rows that grows with the depth of the cursor or the size of the table.
MAX_ROWS_READ = 4 * LIMIT
MAX_BUFFERS = 2 * LIMIT + 20

# 55% of tasks are (high, completed) and 9% sit in each other bucket, so every filter shape
# below holds more than DEEP_OFFSET + LIMIT rows and page 10,000 exists for each.
LOAD = f"""
INSERT INTO tasks (title, completed, priority, created_at, updated_at)
SELECT 'task ' || i,
       CASE WHEN r < 0.55 THEN true ELSE (ARRAY[false, true, false, true, false])[b] END,
       CASE WHEN r < 0.55 THEN 'high'
            ELSE (ARRAY['low', 'low', 'medium', 'medium', 'high'])[b] END::task_priority,
       at, at
FROM (
    SELECT i, r, 1 + least(floor((r - 0.55) / 0.09)::int, 4) AS b,
           now() - random() * interval '365 days' AS at
    FROM (SELECT i, random() AS r FROM generate_series(1, {ROWS}) AS i) AS drawn
) AS rows
"""


@dataclass(frozen=True)
class Shape:
    name: str
    query: ListQuery
    deep_offset: int = DEEP_OFFSET


SHAPES = [
    Shape("no filter", ListQuery(limit=LIMIT)),
    Shape("one priority", ListQuery(priorities=(Priority.HIGH,), limit=LIMIT)),
    Shape("completed", ListQuery(completed=True, limit=LIMIT)),
    Shape(
        "priority + completed",
        ListQuery(priorities=(Priority.HIGH,), completed=True, limit=LIMIT),
    ),
    # A rare bucket (9%, about 90,000 rows): the index still walks only its own rows.
    Shape(
        "rare priority + completed",
        ListQuery(priorities=(Priority.LOW,), completed=False, limit=LIMIT),
        deep_offset=80_000,
    ),
]


@pytest.fixture(scope="module")
def million_tasks(postgres: Postgres, migrated_template: str) -> Iterator[str]:
    url = postgres.create_database("taskflow_indexes", template=migrated_template)
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        # Bulk load, then build the migration's own secondary indexes in one pass each.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'tasks' AND indexname <> 'pk_tasks'"
        ).fetchall()
        assert len(indexes) == 5
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SELECT setseed(0.42)")  # the same data set, hence the same plans, every run
        conn.execute(LOAD)
        conn.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE tasks")
    print(f"\nloaded {ROWS:,} tasks with indexes and triggers in {time.monotonic() - started:.1f}s")
    yield url
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{url.rpartition("/")[2]}" WITH (FORCE)')


def explain(url: str, statement: Statement, plan_cache_mode: str) -> dict[str, Any]:
    """EXPLAIN ANALYZE of `statement` prepared as asyncpg prepares it, in the given plan mode."""
    sql, params = statement
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(f"SET plan_cache_mode = {plan_cache_mode}")
        conn.execute(f"PREPARE page AS {sql}")
        placeholders = ", ".join(["%s"] * len(params))
        execute = f"EXECUTE page({placeholders})" if params else "EXECUTE page"
        row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}", params).fetchone()
    assert row is not None
    document = row[0] if isinstance(row[0], list) else json.loads(row[0])
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def rows_read(plan: dict[str, Any]) -> int:
    """Rows produced by every scan node (times loops), plus rows its filters threw away."""
    total = 0
    if "Scan" in plan["Node Type"]:
        loops = plan.get("Actual Loops", 1)
        total += int((plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * loops)
    return total + sum(rows_read(child) for child in plan.get("Plans", []))


def buffers(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


def deep_position(url: str, query: ListQuery, offset: int) -> Position:
    """The position after which the page at row `offset` of `query` starts."""
    sql, params = list_statement(replace(query, limit=1))
    sql = f"{sql} OFFSET {offset - 1}"
    with psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(f"PREPARE at_offset AS {sql}")
        placeholders = ", ".join(["%s"] * len(params))
        execute = f"EXECUTE at_offset({placeholders})" if params else "EXECUTE at_offset"
        row = conn.execute(execute, params).fetchone()
    assert row is not None, f"the data set has no row {offset} for this shape"
    return Position(value=row[5], id=row[0])


def scan_nodes(plan: dict[str, Any]) -> list[str]:
    here = (
        [f"{plan['Node Type']}:{plan.get('Index Name', '')}"] if "Scan" in plan["Node Type"] else []
    )
    return here + [node for child in plan.get("Plans", []) for node in scan_nodes(child)]


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("shape", SHAPES, ids=[shape.name for shape in SHAPES])
def test_a_page_reads_about_one_page_of_rows_at_page_1_and_page_10001(
    million_tasks: str, shape: Shape, plan_cache_mode: str
) -> None:
    deep = replace(
        shape.query, position=deep_position(million_tasks, shape.query, shape.deep_offset)
    )
    deep_page = f"page {shape.deep_offset // LIMIT + 1:,}"
    for page, query in (("page 1", shape.query), (deep_page, deep)):
        plan = explain(million_tasks, list_statement(query), plan_cache_mode)
        where = f"{shape.name}, {page}, {plan_cache_mode}: {scan_nodes(plan)}"
        assert plan["Actual Rows"] == LIMIT + 1, where
        assert rows_read(plan) <= MAX_ROWS_READ, where
        assert buffers(plan) <= MAX_BUFFERS, f"{where}: {buffers(plan)} buffers"


def test_stats_read_six_rows_at_a_million_tasks(million_tasks: str) -> None:
    with psycopg.connect(million_tasks) as conn:
        total = conn.execute("SELECT count(*) FROM tasks").fetchone()
    assert total == (ROWS,)
    plan = explain(million_tasks, Statement(STATS_QUERY), "auto")
    assert plan["Actual Rows"] == 6
    assert rows_read(plan) == 6
    assert buffers(plan) <= 4
