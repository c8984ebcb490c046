"""Database connections for tests, as the APIs open them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from taskflow_core.engine import asyncpg_dsn
from taskflow_core.settings import DatabaseSettings, Env


def async_url(database_url: str) -> str:
    """`database_url` (any postgresql:// URL) as the APIs read it: with the asyncpg driver."""
    return DatabaseSettings.from_env(Env({"DATABASE_URL": database_url})).url


@asynccontextmanager
async def request_connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """One asyncpg connection in autocommit, as the APIs' request pool hands them out."""
    conn = await asyncpg.connect(asyncpg_dsn(async_url(database_url)))
    try:
        yield conn
    finally:
        await conn.close()
