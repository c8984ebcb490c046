"""The database connections of every TaskFlow process.

`create_engine` builds the SQLAlchemy async engines of the migrate command, alembic and the
readiness probe. `RequestPool` is the request path's pool: asyncpg itself, because per request
SQLAlchemy's pool checkout, its pre-ping and the BEGIN/ROLLBACK around every read cost more CPU
than the read (README.md, "Performance"). Each use states its own limits: a request gets one
deadline for its pool wait, connect and statements (DB_POOL_TIMEOUT + DB_CONNECT_TIMEOUT +
DB_STATEMENT_TIMEOUT); a migration gets neither (its wait for the advisory lock
is bounded by lock_timeout in alembic/env.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from taskflow_core.deadline import deadline_for
from taskflow_core.settings import PoolSettings

CONNECT_TIMEOUT = 5.0  # seconds to open a connection (migrate command, readiness default)
# A backend whose client died (a killed initContainer mid-migration) notices within this and
# rolls back, instead of holding its locks until its statement ends (PostgreSQL >= 14).
CLIENT_CHECK_INTERVAL = "1s"
IDLE_CONNECTION_LIFETIME = 300.0  # seconds an idle pooled connection is kept


def server_settings(application_name: str) -> dict[str, str]:
    """Session settings of every connection: its name in pg_stat_activity, and the dead-client
    check that lets a killed process's backend roll back at once."""
    return {
        "application_name": application_name,
        "client_connection_check_interval": CLIENT_CHECK_INTERVAL,
    }


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
        "server_settings": server_settings(application_name),
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


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+asyncpg://...`) as asyncpg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# After these the connection's state is unknown: it is dropped, not returned to the pool.
_CONNECTION_IN_DOUBT = (
    TimeoutError,
    asyncio.CancelledError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


async def _keep_session(_: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (one round trip per request): request code never
    changes session state, and asyncpg still rolls back a transaction left open."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a RequestPool, read at scrape time (taskflow_core.pool_metrics)."""

    size: int  # DB_POOL_SIZE
    max_connections: int  # DB_POOL_SIZE + DB_MAX_OVERFLOW
    in_use: int
    idle: int  # open and free
    waits: int  # checkouts that found every connection in use, since start
    timeouts: int  # waits that hit DB_POOL_TIMEOUT (answered 503), since start

    @property
    def overflow(self) -> int:
        """Connections in use beyond DB_POOL_SIZE (a part of in_use)."""
        return max(0, self.in_use - self.size)


class RequestPool:
    """An API's request connections: at most DB_POOL_SIZE + DB_MAX_OVERFLOW, opened on demand.

    Statements run in autocommit (one statement, one transaction: no BEGIN/COMMIT round trips)
    on asyncpg's per-connection prepared statements; `transaction()` is there for the rest.
    A request's database work has one deadline (`taskflow_core.deadline`): getting a connection
    may take DB_POOL_TIMEOUT + DB_CONNECT_TIMEOUT of it, all its statements the rest; past it
    TimeoutError (answered 503), and the connection is dropped rather than reused mid-cancel.
    Checkouts, waits and timeouts are kept as plain integers; `stats()` reads them when scraped.
    """

    def __init__(self, url: str, *, application_name: str, pool: PoolSettings) -> None:
        self._dsn = asyncpg_dsn(url)
        self._settings = pool
        self._connect_kwargs: dict[str, Any] = {
            "timeout": pool.connect_timeout,
            "command_timeout": pool.statement_timeout,
            "server_settings": {
                **server_settings(application_name),
                # The server stops a statement nobody waits for any more.
                "statement_timeout": str(round(pool.statement_timeout * 1000)),
            },
        }
        self._pool: asyncpg.Pool | None = None
        self._max = pool.size + pool.max_overflow
        self._in_use = 0
        self._waits = 0
        self._timeouts = 0

    def stats(self) -> PoolStats:
        idle = 0
        if self._pool is not None:
            idle = self._pool.get_idle_size()
        return PoolStats(
            size=self._settings.size,
            max_connections=self._max,
            in_use=self._in_use,
            idle=idle,
            waits=self._waits,
            timeouts=self._timeouts,
        )

    async def open(self) -> None:
        """Create the pool; it connects nothing until the first request needs a connection."""
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._settings.size + self._settings.max_overflow,
            max_inactive_connection_lifetime=IDLE_CONNECTION_LIFETIME,
            reset=_keep_session,
            **self._connect_kwargs,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def connection(self) -> Checkout:
        """A pooled connection for the block, within the request's deadline (TimeoutError)."""
        if self._pool is None:
            raise RuntimeError("the request pool is not open (app lifespan not started)")
        return Checkout(self, self._pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside one transaction (committed when the block succeeds)."""
        async with self.connection() as conn, conn.transaction():
            yield conn


class Checkout:
    """One use of a RequestPool connection (`async with pool.connection() as conn`).

    A class, not a generator context manager, and one timer for both bounds (the acquire's,
    then rescheduled to the request's deadline): this runs on every request's hot path.
    """

    __slots__ = ("_conn", "_owner", "_pool", "_timeout")

    def __init__(self, owner: RequestPool, pool: asyncpg.Pool) -> None:
        self._owner = owner
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._timeout: asyncio.Timeout | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        owner = self._owner
        settings = owner._settings
        now = asyncio.get_running_loop().time()
        deadline = deadline_for(now, settings.request_bound)
        if owner._in_use >= owner._max:
            owner._waits += 1
        # asyncio.timeout, not acquire(timeout=...): that wraps every acquire in a new task.
        timeout = asyncio.timeout_at(
            min(deadline, now + settings.timeout + settings.connect_timeout)
        )
        await timeout.__aenter__()
        try:
            conn = await self._pool.acquire()
        except BaseException as exc:
            await _acquire_failed(owner, timeout, exc)
            raise
        owner._in_use += 1
        timeout.reschedule(deadline)
        self._conn, self._timeout = conn, timeout
        return conn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        conn, timeout = self._conn, self._timeout
        assert conn is not None  # set by __aenter__
        assert timeout is not None
        try:
            # The deadline's cancellation becomes TimeoutError here.
            await timeout.__aexit__(exc_type, exc, tb)
        except BaseException:
            conn.terminate()
            raise
        else:
            if isinstance(exc, _CONNECTION_IN_DOUBT):
                # A statement may still be cancelling, or the protocol lost its state (a
                # session the server ended while idle): never reuse nor wait for it.
                conn.terminate()
        finally:
            self._owner._in_use -= 1
            await self._pool.release(conn)


async def _acquire_failed(owner: RequestPool, timer: asyncio.Timeout, exc: BaseException) -> None:
    """Close the acquire's timer; its expiry is a pool timeout (answered 503)."""
    try:
        await timer.__aexit__(type(exc), exc, exc.__traceback__)
    except TimeoutError as expired:
        owner._timeouts += 1
        raise TimeoutError(
            "no database connection within DB_POOL_TIMEOUT + DB_CONNECT_TIMEOUT"
        ) from expired
