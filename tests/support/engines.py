"""SQLAlchemy engines for tests, built by the project's one engine builder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from taskflow_core.engine import create_engine
from taskflow_core.settings import DatabaseSettings, Env


def async_url(database_url: str) -> str:
    """`database_url` (any postgresql:// URL) as the APIs read it: with the asyncpg driver."""
    return DatabaseSettings.from_env(Env({"DATABASE_URL": database_url})).url


@asynccontextmanager
async def unpooled_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        async_url(database_url),
        application_name="taskflow-tests",
        pool=None,
        statement_timeout=None,
    )
    try:
        yield engine
    finally:
        await engine.dispose()
