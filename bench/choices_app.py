"""One query, five ways of reaching PostgreSQL: what the data-access layer costs per request.

The six count rows of GET /stats, msgspec-encoded, in a minimal Litestar app (no middleware):

    /orm           an ORM AsyncSession per request (select of the mapped class's columns)
    /core          a Core connection of an engine as the APIs had it (pre-ping, BEGIN/ROLLBACK)
    /core-lean     a Core connection without pre-ping, in AUTOCOMMIT (no BEGIN/ROLLBACK)
    /driver        the same pooled connection, the query on asyncpg's own prepared statement
    /raw           an asyncpg pool, no SQLAlchemy at all (the ceiling's way)

Reads DATABASE_URL and BENCH_POOL from the environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, MediaType, Response, get
from sqlalchemy import select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from taskflow_core.models import TaskCount

COUNTS_SQL = "SELECT priority, completed, total FROM task_counts"
COUNTS = select(TaskCount.priority, TaskCount.completed, TaskCount.total)


class State:
    engine: AsyncEngine
    lean: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: asyncpg.Pool


state = State()


def _json(rows: Any) -> Response[bytes]:
    body = msgspec.json.encode([(str(p), bool(c), int(t)) for p, c, t in rows])
    return Response(body, media_type=MediaType.JSON)


@get("/orm")
async def orm() -> Response[bytes]:
    async with state.sessions() as session:
        rows = (await session.execute(COUNTS)).all()
    return _json(rows)


@get("/core")
async def core() -> Response[bytes]:
    async with state.engine.connect() as conn:
        rows = (await conn.execute(COUNTS)).all()
    return _json(rows)


@get("/core-lean")
async def core_lean() -> Response[bytes]:
    async with state.lean.connect() as conn:
        rows = (await conn.execute(COUNTS)).all()
    return _json(rows)


@get("/driver")
async def driver() -> Response[bytes]:
    async with state.lean.connect() as conn:
        raw = await conn.get_raw_connection()
        rows = await raw.driver_connection.fetch(COUNTS_SQL)  # type: ignore[union-attr]
    return _json(rows)


@get("/raw")
async def raw() -> Response[bytes]:
    async with state.pool.acquire() as conn:
        rows = await conn.fetch(COUNTS_SQL)
    return _json(rows)


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_POOL", "6"))
    url = os.environ["DATABASE_URL"]
    sa_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    state.engine = create_async_engine(sa_url, pool_size=4, max_overflow=2, pool_pre_ping=True)
    state.lean = create_async_engine(
        sa_url, pool_size=4, max_overflow=2, isolation_level="AUTOCOMMIT"
    )
    state.sessions = async_sessionmaker(state.engine, expire_on_commit=False)
    state.pool = await asyncpg.create_pool(url, min_size=size, max_size=size)
    try:
        yield
    finally:
        await state.pool.close()
        await state.engine.dispose()
        await state.lean.dispose()


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[orm, core, core_lean, driver, raw],
        lifespan=[lifespan],
        logging_config=None,
        openapi_config=None,
    )
