"""The one builder of SQLAlchemy async engines, for the APIs, the migrate command and alembic.

Each use states its own limits: an API request gets a pool and a statement timeout; a migration
gets neither (its wait for the advisory lock is bounded by lock_timeout in alembic/env.py).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from taskflow_core.settings import PoolSettings

CONNECT_TIMEOUT = 5.0  # seconds to open a connection before the request gives up
REQUEST_STATEMENT_TIMEOUT = 15.0  # below the server's 20 s drain: a statement never outlives it
# A backend whose client died (a killed initContainer mid-migration) notices within this and
# rolls back, instead of holding its locks until its statement ends (PostgreSQL >= 14).
CLIENT_CHECK_INTERVAL = "1s"


def create_engine(
    url: str,
    *,
    application_name: str,
    pool: PoolSettings | None,
    statement_timeout: float | None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> AsyncEngine:
    """An asyncpg engine; `pool=None` opens a fresh connection for every checkout."""
    connect_args: dict[str, object] = {
        "timeout": connect_timeout,
        "command_timeout": statement_timeout,
        "server_settings": {
            "application_name": application_name,
            "client_connection_check_interval": CLIENT_CHECK_INTERVAL,
        },
    }
    if pool is None:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    return create_async_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
