"""Cache-aside over Redis for list pages and statistics.

Every key carries the database's cache generation, which a trigger bumps in every writing
transaction. Readers read the generation before their data query, so an entry written for an
older generation is never looked up again: eviction, a Redis restart (old keys reloaded from
its AOF) or a write made while Redis was frozen or down can never make a stale entry reachable.
Redis is optional on the request path: short timeouts, no retries, a circuit breaker, and any
failure falls through to the database.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg
import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisError
from redis.maint_notifications import MaintNotificationsConfig

from taskflow_core.cache_breaker import BreakerState, CircuitBreaker
from taskflow_core.cache_metrics import CacheResult, cache_breaker_open, cache_requests
from taskflow_core.engine import RequestPool
from taskflow_core.settings import CacheSettings

__all__ = [
    "GENERATION_QUERY",
    "Cache",
    "CacheResult",
    "body_format",
    "compose_generation",
    "create_client",
    "current_generation",
]

KEY_PREFIX = "taskflow"
SOCKET_TIMEOUT = 0.15  # seconds; a healthy Redis on the cluster network answers in well under 1 ms
CONNECT_TIMEOUT = 0.15
OPERATION_TIMEOUT = 0.5  # upper bound on one Redis call, whatever the socket layer does
MAX_CONNECTIONS = 64
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN = 2.0

# Errors that mean "Redis cannot serve right now"; the request goes to the database instead.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

log = structlog.get_logger(__name__)
T = TypeVar("T")


# The write counter plus what tells this database apart from any other that may share the Redis:
# a clone of the same template or a database dropped and created again (its oid), another
# cluster or a restore from a physical backup (the server's start time). The start time is also
# the epoch of a primary: a promoted standby has its own (promotion restarts nothing, demotion
# restarts the server), so its counter, even where it reaches a value the old primary had with
# other data, never repeats a key (tests/ha/test_failover.py). Catalog reads: cheap.
GENERATION_QUERY = (
    "SELECT g.value, d.oid::bigint, "
    "(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint "
    "FROM cache_generation AS g JOIN pg_database AS d ON d.datname = current_database() "
    "WHERE g.id = 1"
)


async def current_generation(conn: asyncpg.Connection) -> int:
    """The cache generation; read it on the caller's connection before the data query.

    An opaque number that changes with every writing transaction and is never shared by two
    databases, nor by one database before and after it was re-created or restored. One
    statement (a prepared one) in autocommit: the data query that follows sees at least every
    write the generation counts, so a body is never older than its key.
    """
    row = await conn.fetchrow(GENERATION_QUERY)
    value, database_oid, started_us = row
    return compose_generation(int(value), int(database_oid), int(started_us))


def compose_generation(value: int, database_oid: int, started_us: int) -> int:
    # Exact packing, no hashing: distinct inputs can never give the same generation.
    namespace = (started_us << 32) | database_oid
    return (namespace << 64) | value


def cache_key(key: str, generation: int) -> str:
    return f"{KEY_PREFIX}:{generation}:{key}"


def body_format(struct: type[msgspec.Struct]) -> str:
    """A version of a cached body's format, derived from its struct's JSON schema.

    Part of every key of such bodies: a pod whose body has other fields or types than an older
    pod's (both share Redis during a rollout) never reads what the other cached.
    """
    schema = msgspec.json.encode(msgspec.json.schema(struct), order="sorted")
    return hashlib.sha256(schema).hexdigest()[:12]


class SingleFlight(Generic[T]):
    """Concurrent calls for one key share one in-flight call (per process, per event loop)."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        while (pending := self._calls.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                # The leader's request was cancelled, not ours: take over instead of failing.
                if pending.cancelled() and not _being_cancelled():
                    continue
                raise
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls[key] = future
        try:
            result = await work()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved: no "never retrieved" noise without waiters
            raise
        else:
            future.set_result(result)
            return result
        finally:
            if self._calls.get(key) is future:
                del self._calls[key]


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Cache:
    """Cache-aside with generation keys; `fetch` never fails because of Redis."""

    def __init__(
        self,
        client: Redis | None,
        *,
        ttl: int,
        app_name: str,
        breaker_threshold: int = BREAKER_THRESHOLD,
        breaker_cooldown: float = BREAKER_COOLDOWN,
        operation_timeout: float = OPERATION_TIMEOUT,
    ) -> None:
        self._client = client
        self.ttl = ttl
        self.app_name = app_name
        self.breaker = CircuitBreaker(
            breaker_threshold, breaker_cooldown, on_change=self._breaker_changed
        )
        self._operation_timeout = operation_timeout
        self._flights: SingleFlight[tuple[bytes, CacheResult]] = SingleFlight()
        self._requests = {result: cache_requests.labels(app_name, result) for result in CacheResult}
        self._breaker_gauge = cache_breaker_open.labels(app_name)
        self._breaker_gauge.set(0)

    @classmethod
    def from_settings(
        cls,
        settings: CacheSettings,
        app_name: str,
        *,
        breaker_threshold: int = BREAKER_THRESHOLD,
        breaker_cooldown: float = BREAKER_COOLDOWN,
    ) -> Cache:
        """A cache for `settings`; disabled (fetch only loads) without REDIS_URL or CACHE_TTL."""
        client = None
        if settings.enabled and settings.redis_url is not None:
            client = create_client(settings.redis_url, app_name)
        return cls(
            client,
            ttl=settings.ttl,
            app_name=app_name,
            breaker_threshold=breaker_threshold,
            breaker_cooldown=breaker_cooldown,
        )

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def fetch(self, key: str, generation: int, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """The value of `key` at `generation`: from Redis, else from `load()` (then stored)."""
        if self._client is None:
            self._requests[CacheResult.BYPASS].inc()
            return await load()
        full_key = cache_key(key, generation)
        value, result = await self._flights.run(
            full_key, lambda: self._read_through(full_key, load)
        )
        self._requests[result].inc()
        return value

    async def fetch_current(
        self, pool: RequestPool, key: str, load: Callable[[asyncpg.Connection], Awaitable[bytes]]
    ) -> bytes:
        """`fetch` at the database's current generation, read before `load` reads the data.

        In that order a cached body is never older than its key, whatever commits in between.
        The generation's connection goes back to the pool before Redis is asked, and a miss
        loads on a connection of its own: a hit holds a connection for one round trip only.
        With the cache off, `load` runs at once (no generation is needed).
        """
        if self._client is None:
            self._requests[CacheResult.BYPASS].inc()
            async with pool.connection() as conn:
                return await load(conn)
        async with pool.connection() as conn:
            generation = await current_generation(conn)

        async def load_fresh() -> bytes:
            async with pool.connection() as conn:
                return await load(conn)

        return await self.fetch(key, generation, load_fresh)

    async def ping(self) -> bool:
        """Is Redis answering? For readiness reports; does not feed the breaker."""
        if self._client is None:
            return False
        try:
            async with asyncio.timeout(self._operation_timeout):
                return bool(await self._client.ping())
        except REDIS_FAILURES:
            return False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _read_through(
        self, full_key: str, load: Callable[[], Awaitable[bytes]]
    ) -> tuple[bytes, CacheResult]:
        client = self._client
        if client is None or not self.breaker.allow():
            return await load(), CacheResult.BYPASS
        try:
            async with asyncio.timeout(self._operation_timeout):
                cached = await client.get(full_key)
        except MaxConnectionsError:
            # A full client pool says nothing about Redis' health: skip it, keep the breaker.
            self.breaker.release()
            return await load(), CacheResult.BYPASS
        except REDIS_FAILURES as exc:
            self._failed("get", exc)
            return await load(), CacheResult.ERROR
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        if cached is not None:
            # The client never decodes responses, so this is the stored bytes.
            return (cached.encode() if isinstance(cached, str) else cached), CacheResult.HIT
        value = await load()
        return value, await self._store(client, full_key, value)

    async def _store(self, client: Redis, full_key: str, value: bytes) -> CacheResult:
        if self.breaker.is_open:
            return CacheResult.MISS
        try:
            async with asyncio.timeout(self._operation_timeout):
                await client.set(full_key, value, ex=self.ttl)
        except MaxConnectionsError:
            return CacheResult.MISS
        except REDIS_FAILURES as exc:
            self._failed("set", exc)
            return CacheResult.ERROR
        return CacheResult.MISS

    def _failed(self, command: str, exc: BaseException) -> None:
        self.breaker.record_failure()
        log.debug("cache.redis_error", command=command, error=type(exc).__name__)

    def _breaker_changed(self, state: BreakerState) -> None:
        self._breaker_gauge.set(0 if state is BreakerState.CLOSED else 1)
        if state is BreakerState.OPEN:
            log.warning("cache.breaker_open", app=self.app_name, cooldown=self.breaker.cooldown)
        elif state is BreakerState.CLOSED:
            log.info("cache.breaker_closed", app=self.app_name)


def create_client(url: str, app_name: str, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A redis-py asyncio client that fails fast: short timeouts, no retries, bounded pool."""
    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        max_connections=max_connections,
        health_check_interval=0,
        client_name=f"taskflow-{app_name}",
        # No CLIENT SETINFO: it costs two round trips and a package-metadata read (~10 ms of
        # event-loop time) on every new connection.
        driver_info=None,
        # Maintenance notifications could relax our timeouts to 10 s; never wanted here.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
