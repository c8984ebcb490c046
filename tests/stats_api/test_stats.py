"""stats-api as a real server process on a real PostgreSQL and Redis: body, figures, cost."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from stats_api.queries import STATS_QUERY
from stats_api.service import STATS_CACHE_KEY, load_stats
from taskflow_core.cache import Cache, create_client, current_generation

from devstack.databases import Postgres
from devstack.servers import free_port
from tests.support.api_process import ApiProcess, running
from tests.support.engines import request_connection
from tests.support.task_rows import counted_stats, execute, insert

EMPTY = {
    "total": 0,
    "completed": 0,
    "pending": 0,
    "completion_rate": 0,
    "by_priority": {
        "low": {"total": 0, "completed": 0},
        "medium": {"total": 0, "completed": 0},
        "high": {"total": 0, "completed": 0},
    },
}


@pytest.fixture
def stats_api(database_url: str, redis_url: str) -> Iterator[ApiProcess]:
    with running("stats_api", database_url, redis_url) as api:
        yield api


def stats(api: ApiProcess) -> dict[str, Any]:
    response = httpx.get(f"{api.url}/stats", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def test_empty_table_gives_zeros_and_a_zero_completion_rate(stats_api: ApiProcess) -> None:
    body = stats(stats_api)
    assert body == EMPTY
    assert isinstance(body["completion_rate"], int | float)


def test_exact_figures_follow_inserts_updates_deletes_and_ignore_rollbacks(
    stats_api: ApiProcess, database_url: str
) -> None:
    execute(
        database_url,
        insert("low", False, 3),
        insert("low", True, 1),
        insert("medium", False, 3),
        insert("high", False, 2),
        insert("high", True, 3),
    )
    assert stats(stats_api) == {
        "total": 12,
        "completed": 4,
        "pending": 8,
        "completion_rate": pytest.approx(4 / 12),
        "by_priority": {
            "low": {"total": 4, "completed": 1},
            "medium": {"total": 3, "completed": 0},
            "high": {"total": 5, "completed": 3},
        },
    }
    execute(
        database_url,
        # medium -> high and completed; one low pending task deleted
        "UPDATE tasks SET priority = 'high', completed = true WHERE id = "
        "(SELECT min(id) FROM tasks WHERE priority = 'medium')",
        "DELETE FROM tasks WHERE id = (SELECT min(id) FROM tasks WHERE priority = 'low' "
        "AND NOT completed)",
    )
    execute(database_url, insert("low", True, 50), "DELETE FROM tasks", rollback=True)
    body = stats(stats_api)
    assert body == counted_stats(database_url)
    assert body["by_priority"] == {
        "low": {"total": 3, "completed": 1},
        "medium": {"total": 2, "completed": 0},
        "high": {"total": 6, "completed": 4},
    }
    assert (body["total"], body["completed"], body["pending"]) == (11, 5, 6)

    execute(database_url, "DELETE FROM tasks")
    assert stats(stats_api) == EMPTY


def test_without_the_cache_each_read_follows_the_count_rows(database_url: str) -> None:
    """The cache off (no REDIS_URL): every /stats reads the rows; a body is reused only while they
    are equal, including when they come back to an earlier state."""
    with running("stats_api", database_url, None) as api:
        assert stats(api) == EMPTY
        execute(database_url, insert("low", False, 2))
        first = stats(api)
        assert first == counted_stats(database_url)
        assert first["total"] == 2
        execute(
            database_url,
            "UPDATE tasks SET completed = true WHERE id = (SELECT min(id) FROM tasks)",
        )
        second = stats(api)  # the same total, one bucket moved
        assert second == counted_stats(database_url)
        assert second["completed"] == 1
        execute(database_url, "UPDATE tasks SET completed = false")
        assert stats(api) == first
        assert stats(api) == first


def test_repeated_reads_are_served_from_the_cache(stats_api: ApiProcess, database_url: str) -> None:
    execute(database_url, insert("high", True, 2))
    first = stats(stats_api)
    hits = stats_api.cache_requests("hit")
    for _ in range(5):
        assert stats(stats_api) == first
    assert stats_api.cache_requests("hit") == hits + 5
    execute(database_url, insert("high", False, 1))
    assert stats(stats_api)["by_priority"]["high"] == {"total": 3, "completed": 2}


def test_without_redis_the_api_answers_from_the_database(database_url: str) -> None:
    execute(database_url, insert("medium", True, 1))
    with running("stats_api", database_url, None) as api:
        assert stats(api)["by_priority"]["medium"] == {"total": 1, "completed": 1}
        assert api.cache_requests("bypass") == 1
        assert api.cache_requests("hit") == 0


def test_openapi_documents_the_stats_body(stats_api: ApiProcess) -> None:
    document = httpx.get(f"{stats_api.url}/schema/openapi.json", timeout=5).json()
    operation = document["paths"]["/stats"]["get"]
    assert operation["operationId"] == "getStats"
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Stats"}
    properties = document["components"]["schemas"]["Stats"]["properties"]
    assert set(properties) == {"total", "completed", "pending", "completion_rate", "by_priority"}


def explain(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {STATS_QUERY}").fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_the_stats_query_reads_six_rows_whatever_the_table_size(database_url: str) -> None:
    execute(database_url, insert("low", False, 1_000))
    small = explain(database_url)
    execute(database_url, insert("medium", True, 100_000), insert("high", False, 100_000))
    large = explain(database_url)
    for plan in (small, large):
        nodes = list(plan_nodes(plan))
        assert {n["Relation Name"] for n in nodes if "Relation Name" in n} == {"task_counts"}
        assert max(n["Actual Rows"] * n["Actual Loops"] for n in nodes) <= 6
        buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
        assert buffers <= 4, plan
    assert large["Actual Rows"] == small["Actual Rows"] == 6


async def test_concurrent_cold_reads_load_once_per_process(
    database_url: str, redis_url: str
) -> None:
    """Forty requests' worth of connections miss together; the database is asked once."""
    execute(database_url, insert("low", True, 7))
    name = f"stats-test-{uuid.uuid4().hex[:8]}"
    cache = Cache(create_client(redis_url, name), ttl=60, app_name=name)
    loads = 0

    async def one_request() -> bytes:
        async with request_connection(database_url) as conn:
            generation = await current_generation(conn)

            async def load() -> bytes:
                nonlocal loads
                loads += 1
                await asyncio.sleep(0.05)  # the database is slow; others arrive meanwhile
                return await load_stats(conn)

            return await cache.fetch(f"{STATS_CACHE_KEY}:{name}", generation, load)

    try:
        bodies = await asyncio.gather(*(one_request() for _ in range(40)))
    finally:
        await cache.aclose()
    assert loads == 1
    assert len(set(bodies)) == 1
    assert b'"low":{"total":7,"completed":7}' in bodies[0]


async def test_current_generation_moves_with_every_writing_transaction(database_url: str) -> None:

    async def generation() -> int:
        async with request_connection(database_url) as conn:
            return await current_generation(conn)

    before = await generation()
    execute(database_url, insert("low", False, 3))
    after_insert = await generation()
    execute(database_url, insert("low", False, 3), rollback=True)
    after_rollback = await generation()
    execute(database_url, "UPDATE tasks SET title = 'renamed'")
    after_update = await generation()
    assert before < after_insert == after_rollback < after_update


async def read_stats_through(cache: Cache, database_url: str) -> dict[str, Any]:
    """One /stats request's worth of work: generation, then figures, through `cache`."""
    async with request_connection(database_url) as conn:
        generation = await current_generation(conn)
        body = await cache.fetch(STATS_CACHE_KEY, generation, lambda: load_stats(conn))
    figures: dict[str, Any] = msgspec.json.decode(body)
    return figures


async def test_databases_sharing_one_redis_never_see_each_others_entries(
    postgres: Postgres, migrated_template: str, redis_url: str
) -> None:
    """Fresh databases (clones of one template, or one dropped and created again under the same
    name) start at the same write count; their entries must still never be confused."""
    name = f"stats-test-{uuid.uuid4().hex[:8]}"
    cache = Cache(create_client(redis_url, name), ttl=60, app_name=name)
    first = postgres.create_database("taskflow_shared", template=migrated_template)
    second = postgres.create_database("taskflow_shared", template=migrated_template)
    try:
        execute(first, insert("low", True, 1))
        execute(second, insert("high", False, 2))  # the same number of writes as `first`
        assert (await read_stats_through(cache, first))["total"] == 1
        assert (await read_stats_through(cache, second))["total"] == 2

        database = second.rpartition("/")[2]
        with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{migrated_template}"')
        execute(second, insert("medium", False, 3), "DELETE FROM tasks WHERE title = 'task 3'")
        assert (await read_stats_through(cache, second))["by_priority"]["medium"]["total"] == 2
    finally:
        await cache.aclose()


@pytest.mark.parametrize(
    ("command", "env", "variable"),
    [
        ([sys.executable, "-m", "stats_api"], {}, "DATABASE_URL"),
        (
            [str(Path(sys.executable).parent / "stats-api")],  # the console script
            {"DATABASE_URL": "postgresql://x@127.0.0.1/db", "CACHE_TTL": "soon"},
            "CACHE_TTL",
        ),
    ],
)
def test_bad_configuration_exits_2_with_one_line_naming_the_variable(
    command: list[str], env: dict[str, str], variable: str
) -> None:
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    result = subprocess.run(
        command, env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


def test_probes_and_metrics_with_redis_unreachable(database_url: str) -> None:
    """Redis is only a cache: stats-api stays ready (degraded) and answers from PostgreSQL."""
    execute(database_url, insert("low", False, 2))
    with running("stats_api", database_url, f"redis://127.0.0.1:{free_port()}/0") as api:
        assert httpx.get(f"{api.url}/health", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(f"{api.url}/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        for _ in range(3):
            assert stats(api)["by_priority"]["low"] == {"total": 2, "completed": 0}
        assert api.cache_requests("error") == 3
        assert api.breaker_open() == 0  # below the threshold of consecutive failures
