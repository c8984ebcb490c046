"""The ceiling: a minimal Litestar app that does only the I/O each measured request needs.

No plugins, middleware, dependency injection, logging or telemetry; raw asyncpg with prepared
statements and redis-py. Each route is the least its TaskFlow counterpart can cost:

    /json        constant JSON                                  (vs /health)
    /rows50      one 50-row read (+1 look-ahead), msgspec-encoded   (vs an uncached page)
    /counts      the six count rows, msgspec-encoded              (vs /stats uncached)
    /redis-page  one Redis GET of a stored page                   (a reference point)
    /hit-floor   the 1-row generation read + one Redis GET        (vs any cache hit)
    /insert      INSERT ... RETURNING into tasks, same triggers   (vs POST /tasks)

Reads DATABASE_URL, REDIS_URL and BENCH_POOL (connections) from the environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from redis.asyncio import Redis

PAGE_SQL = (
    "SELECT id, title, description, completed, priority, created_at, updated_at FROM tasks "
    "WHERE priority = 'high' ORDER BY created_at DESC, id DESC LIMIT 51"
)
COUNTS_SQL = "SELECT priority, completed, total FROM task_counts"
GENERATION_SQL = "SELECT value FROM cache_generation WHERE id = 1"
INSERT_SQL = (
    "INSERT INTO tasks (title, description, completed, priority) "
    "VALUES ($1, $2, $3, $4::task_priority) "
    "RETURNING id, title, description, completed, priority, created_at, updated_at, version"
)
PAGE_KEY = "bench:ceiling:page"
JSON_BODY = b'{"status":"ok"}'


class NewTask(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    description: str | None = None
    completed: bool = False
    priority: str = "medium"


class State:
    pool: asyncpg.Pool
    redis: Redis
    page: bytes


state = State()
decoder = msgspec.json.Decoder(NewTask)


def _json(body: bytes, status_code: int = 200) -> Response[bytes]:
    return Response(body, media_type=MediaType.JSON, status_code=status_code)


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _page(rows: list[Any]) -> bytes:
    return msgspec.json.encode({"items": [dict(r) for r in rows[:50]], "next_cursor": None})


@get("/json", sync_to_thread=False)
def constant_json() -> Response[bytes]:
    return _json(JSON_BODY)


@get("/rows50")
async def rows50() -> Response[bytes]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch(PAGE_SQL)
    return _json(_page(rows))


@get("/counts")
async def counts() -> Response[bytes]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch(COUNTS_SQL)
    return _json(msgspec.json.encode([tuple(r) for r in rows]))


@get("/redis-page")
async def redis_page() -> Response[bytes]:
    return _json(_bytes(await state.redis.get(PAGE_KEY)) or b"")


@get("/hit-floor")
async def hit_floor() -> Response[bytes]:
    async with state.pool.acquire() as conn:  # released before Redis is asked
        generation = await conn.fetchval(GENERATION_SQL)
    key = f"bench:ceiling:{generation}"
    body = _bytes(await state.redis.get(key))
    if body is None:  # only the first request of a generation
        body = state.page
        await state.redis.set(key, body, ex=300)
    return _json(body)


@post("/insert")
async def insert(request: Request[Any, Any, Any]) -> Response[bytes]:
    new = decoder.decode(await request.body())
    async with state.pool.acquire() as conn:
        row = await conn.fetchrow(
            INSERT_SQL, new.title, new.description, new.completed, new.priority
        )
    return _json(msgspec.json.encode(dict(row)), status_code=201)


async def _keep_session(_: asyncpg.Connection) -> None:
    """No reset query on release (the APIs' RequestPool skips it too)."""


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_POOL", "6"))
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    state.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size, reset=_keep_session)
    state.redis = Redis.from_url(os.environ["REDIS_URL"], decode_responses=False)
    async with state.pool.acquire() as conn:
        state.page = _page(await conn.fetch(PAGE_SQL))
    await state.redis.set(PAGE_KEY, state.page)
    try:
        yield
    finally:
        await state.redis.aclose()
        await state.pool.close()


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[constant_json, rows50, counts, redis_page, hit_floor, insert],
        lifespan=[lifespan],
        logging_config=None,
        openapi_config=None,
    )
