"""/health touches nothing; /ready checks the database on a connection of its own (real servers)."""

from __future__ import annotations

import asyncio
import time

import httpx
import psycopg
import pytest

from devstack.servers import PostgresServer, RedisServer
from tests.support.apiserver import api_server, service_env

PROBLEM = "application/problem+json"


def test_health_answers_with_the_database_stopped() -> None:
    database = PostgresServer().start()
    url = database.url("postgres")
    try:
        with api_server("tasks_api", service_env(url)) as server:
            database.stop()
            response = httpx.get(server.base_url + "/health", timeout=5)
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
            ready = httpx.get(server.base_url + "/ready", timeout=10)
            assert ready.status_code == 503
            assert ready.json()["database"] == "unavailable"
            # The API itself answers a problem, not a hang or a stack trace.
            tasks = httpx.get(server.base_url + "/tasks", timeout=20)
            assert tasks.status_code == 503, tasks.text
            assert tasks.headers["content-type"].startswith(PROBLEM)
            assert tasks.json()["type"] == "https://taskflow.dev/problems/service-unavailable"
    finally:
        database.stop()


def test_ready_is_503_on_an_empty_database(empty_database_url: str) -> None:
    with api_server("tasks_api", service_env(empty_database_url)) as server:
        response = httpx.get(server.base_url + "/ready", timeout=10)
        assert response.status_code == 503
        assert response.json()["schema"] == "empty"


def test_ready_is_200_at_head_and_on_a_newer_revision(database_url: str) -> None:
    with api_server("tasks_api", service_env(database_url)) as server:
        at_head = httpx.get(server.base_url + "/ready", timeout=10)
        assert at_head.status_code == 200, at_head.text
        assert at_head.json()["schema"] == "at_head"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '9999'")
        ahead = httpx.get(server.base_url + "/ready", timeout=10)
        assert ahead.status_code == 200, ahead.text
        assert ahead.json()["schema"] == "ahead"


def test_ready_is_503_on_an_older_schema(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    with api_server("tasks_api", service_env(database_url)) as server:
        response = httpx.get(server.base_url + "/ready", timeout=10)
        assert response.status_code == 503
        assert response.json()["schema"] == "behind"


def test_ready_stays_200_but_degraded_while_redis_is_down(
    database_url: str, private_redis: RedisServer
) -> None:
    env = service_env(database_url, REDIS_URL=private_redis.url)
    with api_server("tasks_api", env) as server:
        healthy = httpx.get(server.base_url + "/ready", timeout=10)
        assert healthy.status_code == 200
        assert healthy.json()["status"] == "ok"
        assert healthy.json()["cache"] == "ok"
        private_redis.stop()
        down = httpx.get(server.base_url + "/ready", timeout=10)
        assert down.status_code == 200
        assert down.json()["status"] == "degraded"
        assert down.json()["cache"] == "unavailable"
        # The API keeps answering from PostgreSQL.
        assert httpx.get(server.base_url + "/tasks", timeout=10).status_code == 200


async def test_ready_200_while_the_exhausted_pool_answers_503(database_url: str) -> None:
    env = service_env(database_url, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="0.5")
    with api_server("tasks_api", env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            created = await client.post("/tasks", json={"title": "held"})
            task_id = created.json()["id"]
            # Hold the only pooled connection: a request that waits on a row lock we keep.
            with psycopg.connect(database_url) as blocker:
                blocker.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
                holder = asyncio.create_task(
                    client.patch(f"/tasks/{task_id}", json={"completed": True})
                )
                await _until_waiting_on_lock(database_url)
                started = time.monotonic()
                busy = await client.get("/tasks")
                elapsed = time.monotonic() - started
                ready = await client.get("/ready")
                blocker.rollback()
            held = await holder
        assert busy.status_code == 503, busy.text
        assert busy.headers["content-type"].startswith(PROBLEM)
        assert busy.headers["retry-after"] == "1"
        problem = busy.json()
        assert problem["type"] == "https://taskflow.dev/problems/service-unavailable"
        assert problem["status"] == 503
        # A 503 at all means it did not wait for the held connection; the bound is loose on purpose.
        assert elapsed < 10.0
        assert ready.status_code == 200, ready.text
        assert held.status_code == 200


async def _until_waiting_on_lock(database_url: str) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND application_name = 'tasks-api'"
    )
    for _ in range(100):
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        if row is not None and row[0] >= 1:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the holding request never waited on the lock")
