"""Both APIs as real processes on one PostgreSQL and one Redis: no read is ever stale.

A write is visible to the next read through either API once it has returned, whatever Redis
does meanwhile: eviction, FLUSHALL, a freeze (SIGSTOP), a stop and a restart that reloads old
keys from its AOF. When Redis is down or hung both APIs keep answering correct data from
PostgreSQL in bounded time, and use the cache again by themselves once it is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from stats_api.service import STATS_CACHE_KEY
from taskflow_core.cache import GENERATION_QUERY, compose_generation

from devstack.databases import Postgres
from devstack.servers import RedisServer
from tests.support.api_process import ApiProcess, running_both
from tests.support.task_rows import counted_stats, execute, insert

# Generous bound for one request while Redis is down or hung: "not 5 s, not 59 s".
BOUNDED = 1.0
STATS_KEY = STATS_CACHE_KEY


# One database, one Redis and one pair of API processes for the module (starting the two
# processes is the slow part); every test leaves Redis running, empty and unconstrained.
@pytest.fixture(scope="module")
def database_url(postgres: Postgres, migrated_template: str) -> str:
    return postgres.create_database("taskflow_consistency", template=migrated_template)


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    server = RedisServer(persistence=True).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def module_apis(
    database_url: str, module_redis: RedisServer
) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    with running_both(database_url, module_redis.url) as both:
        yield both


@pytest.fixture
def private_redis(module_redis: RedisServer) -> Iterator[RedisServer]:
    """This module's Redis, to freeze, stop and restart; reset after each test."""
    yield module_redis
    if module_redis.process is None:
        module_redis.start()
    module_redis.resume()
    admin = redis.Redis.from_url(module_redis.url)
    admin.config_set("maxmemory", "0")
    admin.config_set("maxmemory-policy", "noeviction")
    admin.flushall()
    admin.close()


@pytest.fixture
def apis(
    module_apis: tuple[ApiProcess, ApiProcess], private_redis: RedisServer
) -> tuple[ApiProcess, ApiProcess]:
    for api in module_apis:
        assert api.process.poll() is None, api.output()
    return module_apis


def timed_get(url: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    response = httpx.get(url, timeout=5)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, elapsed


def list_page(tasks: ApiProcess) -> list[dict[str, Any]]:
    body, _ = timed_get(f"{tasks.url}/tasks?limit=100")
    items: list[dict[str, Any]] = body["items"]
    return items


def stats(api: ApiProcess) -> dict[str, Any]:
    body, _ = timed_get(f"{api.url}/stats")
    return body


def table_rows(database_url: str) -> list[dict[str, Any]]:
    """What the first list page must show, straight from PostgreSQL."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, title, completed, priority::text FROM tasks "
            "ORDER BY created_at DESC, id DESC LIMIT 100"
        ).fetchall()
    return [{"id": i, "title": t, "completed": c, "priority": p} for i, t, c, p in rows]


def page_summary(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: item[k] for k in ("id", "title", "completed", "priority")} for item in items]


def assert_fresh(tasks: ApiProcess, stats_api: ApiProcess, database_url: str) -> None:
    """Both APIs answer exactly what PostgreSQL holds now, each well within the bound."""
    truth = counted_stats(database_url)
    page, page_time = timed_get(f"{tasks.url}/tasks?limit=100")
    figures, stats_time = timed_get(f"{stats_api.url}/stats")
    assert page_summary(page["items"]) == table_rows(database_url)
    assert figures == {**truth, "completion_rate": pytest.approx(truth["completion_rate"])}
    assert page_time < BOUNDED
    assert stats_time < BOUNDED


def create(tasks: ApiProcess, title: str, priority: str = "medium") -> dict[str, Any]:
    response = httpx.post(
        f"{tasks.url}/tasks", json={"title": title, "priority": priority}, timeout=5
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def generation(database_url: str) -> int:
    """The generation both APIs put in their keys now (what current_generation returns)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(str(GENERATION_QUERY)).fetchone()
    assert row is not None
    return compose_generation(*row)


def warm(tasks: ApiProcess, stats_api: ApiProcess) -> None:
    """Read twice so both entries of the current generation are in Redis (the second is a hit)."""
    hits = tasks.cache_requests("hit"), stats_api.cache_requests("hit")
    for _ in range(2):
        list_page(tasks)
        stats(stats_api)
    assert tasks.cache_requests("hit") > hits[0]
    assert stats_api.cache_requests("hit") > hits[1]


def test_a_write_through_tasks_api_is_visible_to_the_next_read_through_either_api(
    apis: tuple[ApiProcess, ApiProcess], database_url: str
) -> None:
    tasks, stats_api = apis
    warm(tasks, stats_api)
    for i in range(6):
        task = create(tasks, f"write {i}", ("low", "medium", "high")[i % 3])
        assert_fresh(tasks, stats_api, database_url)
        assert list_page(tasks)[0]["id"] == task["id"]

        response = httpx.patch(
            f"{tasks.url}/tasks/{task['id']}", json={"completed": True}, timeout=5
        )
        assert response.status_code == 200, response.text
        assert_fresh(tasks, stats_api, database_url)
        assert list_page(tasks)[0]["completed"] is True

        if i % 2:
            response = httpx.delete(f"{tasks.url}/tasks/{task['id']}", timeout=5)
            assert response.status_code == 204
            assert_fresh(tasks, stats_api, database_url)
        warm(tasks, stats_api)  # the cache is really in use between writes
    assert stats(stats_api)["completed"] == 3


def test_no_stale_entry_after_flushall_or_lru_eviction(
    apis: tuple[ApiProcess, ApiProcess], database_url: str, private_redis: RedisServer
) -> None:
    tasks, stats_api = apis
    admin = redis.Redis.from_url(private_redis.url)
    try:
        create(tasks, "before flush")
        warm(tasks, stats_api)
        admin.flushall()
        assert_fresh(tasks, stats_api, database_url)
        create(tasks, "after flush")
        assert_fresh(tasks, stats_api, database_url)

        # Room for about 1 MB of keys above what Redis itself uses.
        baseline = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(baseline + 1_000_000))
        admin.config_set("maxmemory-policy", "allkeys-lru")
        filler = b"x" * 10_000
        for i in range(300):  # 3 MB of other keys through a 1 MB Redis
            admin.set(f"filler:{i}", filler)
            if i % 50 == 0:
                create(tasks, f"under pressure {i}")
                assert_fresh(tasks, stats_api, database_url)
        assert int(admin.info("stats")["evicted_keys"]) > 0
        assert_fresh(tasks, stats_api, database_url)
    finally:
        admin.close()


def test_freeze_write_resume_read_is_fresh(
    apis: tuple[ApiProcess, ApiProcess], database_url: str, private_redis: RedisServer
) -> None:
    tasks, stats_api = apis
    create(tasks, "old")
    warm(tasks, stats_api)
    old_generation = generation(database_url)
    private_redis.freeze()
    try:
        create(tasks, "written while Redis was frozen", "high")
        assert_fresh(tasks, stats_api, database_url)
    finally:
        private_redis.resume()
    assert generation(database_url) > old_generation
    admin = redis.Redis.from_url(private_redis.url)
    assert admin.exists(f"taskflow:{old_generation}:{STATS_KEY}")  # the old entry is still there
    admin.close()
    assert_fresh(tasks, stats_api, database_url)
    assert list_page(tasks)[0]["title"] == "written while Redis was frozen"


def test_stop_write_restart_with_persistence_read_is_fresh(
    apis: tuple[ApiProcess, ApiProcess], database_url: str, private_redis: RedisServer
) -> None:
    tasks, stats_api = apis
    create(tasks, "old")
    warm(tasks, stats_api)
    old_generation = generation(database_url)
    private_redis.stop()
    create(tasks, "written while Redis was down", "low")
    assert_fresh(tasks, stats_api, database_url)
    private_redis.start()
    admin = redis.Redis.from_url(private_redis.url)
    assert admin.exists(f"taskflow:{old_generation}:{STATS_KEY}")  # reloaded from the AOF
    admin.close()
    assert_fresh(tasks, stats_api, database_url)
    assert list_page(tasks)[0]["title"] == "written while Redis was down"


def wait_for_hits(api: ApiProcess, path: str, timeout: float = 10.0) -> None:
    """Read until the cache serves hits again (the breaker's cool-down must pass first)."""
    hits = api.cache_requests("hit")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        timed_get(f"{api.url}{path}")
        if api.cache_requests("hit") >= hits + 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"{api.module} did not use the cache again within {timeout}s")


@pytest.mark.parametrize("outage", ["hung", "down"])
def test_redis_outage_both_apis_answer_from_postgres_then_use_the_cache_again(
    apis: tuple[ApiProcess, ApiProcess],
    database_url: str,
    private_redis: RedisServer,
    outage: str,
) -> None:
    tasks, stats_api = apis
    warm(tasks, stats_api)
    errors = tasks.cache_requests("error"), stats_api.cache_requests("error")
    assert (tasks.breaker_open(), stats_api.breaker_open()) == (0, 0)
    if outage == "hung":
        private_redis.freeze()
    else:
        private_redis.stop()
    try:
        for i in range(8):
            create(tasks, f"during outage {i}")
            execute(database_url, insert("high", True, 1))  # a writer that is not our API
            assert_fresh(tasks, stats_api, database_url)
        assert tasks.cache_requests("error") > errors[0]
        assert stats_api.cache_requests("error") > errors[1]
        assert (tasks.breaker_open(), stats_api.breaker_open()) == (1, 1)
        assert tasks.cache_requests("bypass") > 0
        assert stats_api.cache_requests("bypass") > 0
    finally:
        if outage == "hung":
            private_redis.resume()
        else:
            private_redis.start()
    wait_for_hits(tasks, "/tasks?limit=100")
    wait_for_hits(stats_api, "/stats")
    assert (tasks.breaker_open(), stats_api.breaker_open()) == (0, 0)
    assert_fresh(tasks, stats_api, database_url)


async def test_under_concurrent_writers_no_read_misses_a_write_that_returned_before_it(
    apis: tuple[ApiProcess, ApiProcess],
) -> None:
    tasks, stats_api = apis
    marker = f"concurrent-{uuid.uuid4().hex[:8]}"
    baseline = stats(stats_api)["total"]
    before = {
        api.app_name: {r: api.cache_requests(r) for r in ("hit", "miss", "error", "bypass")}
        for api in apis
    }
    returned: list[int] = []  # ids of the POSTs that have returned, in order
    writing = True

    async with httpx.AsyncClient(timeout=10) as client:

        async def writer(n: int) -> None:
            for i in range(12):
                response = await client.post(
                    f"{tasks.url}/tasks", json={"title": f"{marker} {n}.{i}"}
                )
                assert response.status_code == 201, response.text
                returned.append(response.json()["id"])

        async def list_reader() -> int:
            reads = 0
            while writing and reads < 500:
                known = set(returned)
                response = await client.get(
                    f"{tasks.url}/tasks", params={"q": marker, "limit": 100}
                )
                assert response.status_code == 200, response.text
                assert known <= {item["id"] for item in response.json()["items"]}
                reads += 1
            return reads

        async def stats_reader() -> int:
            reads = 0
            while writing and reads < 500:
                known = len(returned)
                response = await client.get(f"{stats_api.url}/stats")
                assert response.status_code == 200, response.text
                assert response.json()["total"] >= baseline + known
                reads += 1
            return reads

        readers = [asyncio.create_task(f()) for f in (list_reader, stats_reader) * 2]
        await asyncio.gather(*(writer(n) for n in range(4)))
        writing = False
        reads = await asyncio.gather(*readers)

    assert len(returned) == 48
    assert min(reads) > 0
    for api in apis:
        after = {r: api.cache_requests(r) for r in ("hit", "miss", "error", "bypass")}
        assert after["error"] == before[api.app_name]["error"]
        assert after["bypass"] == before[api.app_name]["bypass"]
        assert (
            after["hit"] + after["miss"]
            > before[api.app_name]["hit"] + before[api.app_name]["miss"]
        )
