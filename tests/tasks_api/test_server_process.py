"""tasks-api as a real process: races on one ETag, cache-aside reads, JSON logs, bad config."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from tests.support.apiserver import REPO, api_server, service_env


async def test_concurrent_patches_with_one_etag_one_wins_one_412(database_url: str) -> None:
    with api_server("tasks_api", service_env(database_url)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            for round_number in range(10):
                created = await client.post("/tasks", json={"title": f"race {round_number}"})
                location, tag = created.headers["location"], created.headers["etag"]
                responses = await asyncio.gather(
                    *(
                        client.patch(
                            location, json={"title": f"writer {n}"}, headers={"if-match": tag}
                        )
                        for n in range(2)
                    )
                )
                statuses = sorted(response.status_code for response in responses)
                assert statuses == [200, 412], [r.text for r in responses]
                winner = next(r for r in responses if r.status_code == 200)
                final = await client.get(location)
                assert final.json()["title"] == winner.json()["title"]
                assert final.headers["etag"] == winner.headers["etag"]


async def test_list_pages_go_through_the_cache_and_writes_show_at_once(
    database_url: str, redis_url: str
) -> None:
    env = service_env(database_url, REDIS_URL=redis_url, CACHE_TTL="300")
    store = redis.Redis.from_url(redis_url)
    with api_server("tasks_api", env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            await client.post("/tasks", json={"title": "first"})
            before = {key for key in store.scan_iter("taskflow:*tasks:list:*")}
            one = await client.get("/tasks?priority=medium")
            again = await client.get("/tasks?priority=medium")
            assert one.json() == again.json()
            assert [t["title"] for t in one.json()["items"]] == ["first"]
            stored = {key for key in store.scan_iter("taskflow:*tasks:list:*")} - before
            assert stored, "the list page was not stored in Redis"
            # A write bumps the generation: the next read misses the old entry and sees the write.
            created = await client.post("/tasks", json={"title": "second"})
            after_write = await client.get("/tasks?priority=medium")
            assert [t["title"] for t in after_write.json()["items"]] == ["second", "first"]
            await client.patch(created.headers["location"], json={"priority": "high"})
            moved = await client.get("/tasks?priority=medium")
            assert [t["title"] for t in moved.json()["items"]] == ["first"]
            await client.delete(created.headers["location"])
            assert (await client.get("/tasks?priority=high")).json()["items"] == []
            scrape = (await client.get("/metrics")).text
    hits = [
        line for line in scrape.splitlines()
        if line.startswith("taskflow_cache_requests_total") and 'result="hit"' in line
    ]  # fmt: skip
    assert hits
    assert float(hits[0].split()[-1]) >= 1
    store.close()


def padded_body(size: int) -> bytes:
    """A JSON task body of exactly `size` bytes (its description is over 10,000 characters)."""
    head, tail = b'{"title": "x", "description": "', b'"}'
    return head + b"d" * (size - len(head) - len(tail)) + tail


async def test_the_64_kib_limit_is_exact_and_holds_for_chunked_bodies(database_url: str) -> None:
    json_type = {"content-type": "application/json"}

    async def chunked(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):  # no Content-Length: the server must count
            yield body[start : start + 4096]

    with api_server("tasks_api", service_env(database_url)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            at_limit = await client.post("/tasks", content=padded_body(65_536), headers=json_type)
            assert at_limit.status_code == 400, at_limit.text  # read whole, then validated
            assert at_limit.json()["errors"][0]["field"] == "description"
            for size in (65_537, 200_000):
                over = await client.post("/tasks", content=padded_body(size), headers=json_type)
                assert over.status_code == 413, over.text
                streamed = await client.post(
                    "/tasks", content=chunked(padded_body(size)), headers=json_type
                )
                assert "content-length" not in streamed.request.headers
                assert streamed.status_code == 413, streamed.text
                assert streamed.headers["content-type"].startswith("application/problem+json")
            assert (await client.get("/tasks")).json()["items"] == []


def test_logs_are_json_lines(database_url: str) -> None:
    with api_server("tasks_api", service_env(database_url, LOG_LEVEL="INFO")) as server:
        httpx.get(server.base_url + "/tasks", timeout=10)
        httpx.get(server.base_url + "/tasks/123456", timeout=10)
        httpx.get(server.base_url + "/metrics", timeout=10)
        deadline = time.monotonic() + 10  # access lines are written in batches, within 0.25 s
        while "GET /tasks/123456 404" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = server.log()
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    assert all({"event", "level", "timestamp", "logger"} <= set(record) for record in records)
    access = [r for r in records if r["logger"] == "taskflow.access"]
    seen = {(r["method"], r["path"], r["route"], r["status"], r["event"]) for r in access}
    assert ("GET", "/tasks", "/tasks", 200, "GET /tasks 200") in seen
    assert ("GET", "/tasks/123456", "/tasks/{task_id}", 404, "GET /tasks/123456 404") in seen
    assert all(r["level"] == "info" and r["duration_ms"] >= 0 for r in access)
    # Probes and scrapes (api_server polls /health) stay out of the access log.
    assert not {r["path"] for r in access} & {"/health", "/ready", "/metrics"}
    # The server's own lines are JSON through the same formatter.
    assert any(r["logger"] == "_granian" for r in records)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x@127.0.0.1/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://x@127.0.0.1/db", "DB_POOL_SIZE": "many"}, "DB_POOL_SIZE"),
        ({"DATABASE_URL": "postgresql://x@127.0.0.1/db", "PORT": "99999"}, "PORT"),
        ({"DATABASE_URL": "postgresql://x@127.0.0.1/db", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        (
            {"DATABASE_URL": "postgresql://x@127.0.0.1/db", "DB_POOL_TIMEOUT": "-1"},
            "DB_POOL_TIMEOUT",
        ),
        ({"DATABASE_HOST": "db", "DATABASE_PORT": "5432"}, "DATABASE_NAME"),
        ({"DATABASE_URL": "postgresql://x@127.0.0.1/db", "REDIS_URL": "http://r"}, "REDIS_URL"),
    ],
)
def test_bad_configuration_exits_2_with_one_line_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    result = subprocess.run(
        [sys.executable, "-m", "tasks_api"],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


async def test_sigterm_drains_the_request_in_flight_then_exits(database_url: str) -> None:
    with api_server("tasks_api", service_env(database_url)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            created = (await client.post("/tasks", json={"title": "draining"})).json()
            with psycopg.connect(database_url) as blocker:
                blocker.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (created["id"],))
                in_flight = asyncio.create_task(
                    client.patch(f"/tasks/{created['id']}", json={"completed": True})
                )
                await wait_for_lock_waiter(database_url)
                server.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(1.0)
                assert server.process.poll() is None  # still draining, not killed
                blocker.rollback()
            response = await in_flight
        assert response.status_code == 200
        assert response.json()["completed"] is True
        # Drained, then exited by itself: 0 (or -SIGTERM should the signal be re-raised).
        assert await asyncio.to_thread(server.process.wait, 20) in {0, -signal.SIGTERM}


async def wait_for_lock_waiter(database_url: str) -> None:
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    for _ in range(100):
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        if row is not None and row[0] >= 1:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the request never waited on the lock")


@pytest.mark.parametrize("package", ["tasks_api", "taskflow_core"])
def test_reload_restarts_the_app_when_a_synced_source_file_changes(
    database_url: str, package: str
) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    probe = Path(module.__file__).parent / f"_reload_probe_{os.getpid()}.py"
    env = service_env(database_url, RELOAD="true", LOG_LEVEL="INFO")
    with api_server("tasks_api", env) as server:
        try:
            probe.write_text("# written by a reload test; deleted right after\n")
            deadline = time.monotonic() + 20
            while "reloading" not in server.log().lower() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            probe.unlink(missing_ok=True)
        assert "reloading" in server.log().lower(), server.log()[-2000:]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.base_url + "/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        assert httpx.get(server.base_url + "/health", timeout=5).status_code == 200


def raw_exchange(base_url: str, request: bytes) -> bytes:
    """One request written as bytes; the server's whole answer (it closes the connection)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_server_level_rejects_are_as_documented(database_url: str) -> None:
    """docs/api.md, "Server-level rejects": what the server answers itself, and what it hands on."""
    with api_server("tasks_api", service_env(database_url)) as server:
        unknown = raw_exchange(
            server.base_url, b"FOO /tasks HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        assert unknown.startswith(b"HTTP/1.1 405 ")
        assert b"content-type: application/problem+json" in unknown.lower()
        assert b"allow: GET, HEAD, POST, OPTIONS" in unknown
        long_line = b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        assert raw_exchange(server.base_url, long_line).startswith(b"HTTP/1.1 414 ")
        fields = b"".join(b"X-Field-%d: v\r\n" % i for i in range(100))
        many = b"GET /health HTTP/1.1\r\nHost: t\r\n" + fields + b"Connection: close\r\n\r\n"
        assert raw_exchange(server.base_url, many).startswith(b"HTTP/1.1 431 ")
