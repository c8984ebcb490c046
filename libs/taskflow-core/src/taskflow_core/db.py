"""Engine and session factory built from Settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import NullPool

from taskflow_core.settings import Settings


def create_engine(settings: Settings, application_name: str) -> AsyncEngine:
    """The request-path engine: a bounded pool that fails fast when exhausted."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        connect_args=_connect_args(application_name),
    )


def create_unpooled_engine(settings: Settings, application_name: str) -> AsyncEngine:
    """An engine that opens a fresh connection each time: readiness checks and migrations."""
    return create_async_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args=_connect_args(application_name),
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _connect_args(application_name: str) -> dict[str, object]:
    # A statement that outlives the server's 20 s drain bound is cut rather than left hanging.
    return {
        "timeout": 5,
        "command_timeout": 15,
        "server_settings": {"application_name": application_name},
    }
