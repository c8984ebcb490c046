"""taskflow_core.cache against a real redis-server: hits, single-flight, eviction, failures."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskflow_core.cache import Cache, compose_generation, create_client
from taskflow_core.cache_breaker import BreakerState
from taskflow_core.settings import CacheSettings

from devstack.servers import RedisServer, free_port

# Generous bound for one request while Redis is down or hung: the point is "not 5 s, not 59 s".
BOUNDED = 1.0


def app_name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def metric(cache: Cache, result: str) -> float:
    labels = {"app_name": cache.app_name, "result": result}
    return REGISTRY.get_sample_value("taskflow_cache_requests_total", labels) or 0.0


def breaker_gauge(cache: Cache) -> float | None:
    return REGISTRY.get_sample_value("taskflow_cache_breaker_open", {"app_name": cache.app_name})


class Loader:
    """The load callable handed to fetch: counts calls and returns a value derived from its key."""

    def __init__(self, value: bytes, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value


def make_cache(url: str, ttl: int = 60, threshold: int = 3, cooldown: float = 0.5) -> Cache:
    name = app_name()
    return Cache(
        create_client(url, name),
        ttl=ttl,
        app_name=name,
        breaker_threshold=threshold,
        breaker_cooldown=cooldown,
    )


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[Cache]:
    cache = make_cache(redis_url)
    yield cache
    await cache.aclose()


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def unique_key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def timed(call: Awaitable[bytes]) -> tuple[bytes, float]:
    started = time.perf_counter()
    value = await call
    return value, time.perf_counter() - started


async def test_miss_stores_under_the_generation_key_with_ttl_then_hits(
    cache: Cache, admin: aioredis.Redis
) -> None:
    key = unique_key()
    load = Loader(b'{"v": 1}')
    assert await cache.fetch(key, 7, load) == b'{"v": 1}'
    assert await cache.fetch(key, 7, load) == b'{"v": 1}'
    assert load.calls == 1
    assert await admin.get(f"taskflow:7:{key}") == b'{"v": 1}'
    assert 0 < await admin.ttl(f"taskflow:7:{key}") <= 60
    assert (metric(cache, "miss"), metric(cache, "hit")) == (1, 1)


async def test_a_new_generation_never_sees_the_old_entry(cache: Cache) -> None:
    key = unique_key()
    assert await cache.fetch(key, 1, Loader(b"old")) == b"old"
    fresh = Loader(b"new")
    assert await cache.fetch(key, 2, fresh) == b"new"
    assert fresh.calls == 1
    assert await cache.fetch(key, 2, Loader(b"unused")) == b"new"


async def test_concurrent_misses_on_one_key_load_once(cache: Cache) -> None:
    key = unique_key()
    load = Loader(b"payload", delay=0.1)
    other = Loader(b"other", delay=0.1)
    results = await asyncio.gather(
        *(cache.fetch(key, 3, load) for _ in range(50)),
        *(cache.fetch(key + "-b", 3, other) for _ in range(20)),
    )
    assert results == [b"payload"] * 50 + [b"other"] * 20
    assert (load.calls, other.calls) == (1, 1)
    # Later requests find the stored value.
    assert await cache.fetch(key, 3, load) == b"payload"
    assert load.calls == 1
    assert metric(cache, "hit") == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(cache: Cache) -> None:
    key = unique_key()
    calls = 0

    async def failing() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("database says no")

    results = await asyncio.gather(
        *(cache.fetch(key, 1, failing) for _ in range(10)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    load = Loader(b"later")
    assert await cache.fetch(key, 1, load) == b"later"
    assert load.calls == 1


async def test_a_cancelled_leader_does_not_fail_its_waiters(cache: Cache) -> None:
    key = unique_key()
    slow = Loader(b"from-leader", delay=1.0)
    leader = asyncio.create_task(cache.fetch(key, 1, slow))
    await asyncio.sleep(0.05)  # the leader is now loading
    own = Loader(b"from-waiter")
    waiter = asyncio.create_task(cache.fetch(key, 1, own))
    await asyncio.sleep(0.05)
    leader.cancel()
    assert await asyncio.wait_for(waiter, 2) == b"from-waiter"
    assert leader.cancelled()
    assert own.calls == 1


async def test_disabled_without_redis_url_or_with_ttl_zero() -> None:
    for settings in (CacheSettings(), CacheSettings(redis_url="redis://127.0.0.1:1/0", ttl=0)):
        cache = Cache.from_settings(settings, app_name())
        load = Loader(b"x")
        assert not cache.enabled
        assert [await cache.fetch("k", 1, load) for _ in range(3)] == [b"x"] * 3
        assert load.calls == 3
        assert metric(cache, "bypass") == 3
        assert not await cache.ping()
        await cache.aclose()


async def test_from_settings_uses_redis_and_ttl(redis_url: str, admin: aioredis.Redis) -> None:
    cache = Cache.from_settings(CacheSettings(redis_url=redis_url, ttl=42), app_name())
    key = unique_key()
    try:
        assert cache.enabled
        assert await cache.ping()
        await cache.fetch(key, 5, Loader(b"v"))
        assert 40 <= await admin.ttl(f"taskflow:5:{key}") <= 42
    finally:
        await cache.aclose()


async def test_flushall_and_lru_eviction_only_cause_misses(private_redis: RedisServer) -> None:
    admin = aioredis.Redis.from_url(private_redis.url)
    cache = make_cache(private_redis.url)
    try:
        await admin.config_set("maxmemory", "2mb")
        await admin.config_set("maxmemory-policy", "allkeys-lru")

        def value(i: int, generation: int) -> bytes:
            return f"{i}:{generation}:".encode() + b"x" * 20_000

        for generation in (1, 2):
            for i in range(300):  # ~6 MB through a 2 MB Redis
                assert await cache.fetch(f"page-{i}", generation, Loader(value(i, generation))) == (
                    value(i, generation)
                )
        info = await admin.info("stats")
        assert info["evicted_keys"] > 0
        for i in range(300):
            assert await cache.fetch(f"page-{i}", 2, Loader(value(i, 2))) == value(i, 2)

        await admin.flushall()
        load = Loader(value(0, 2))
        assert await cache.fetch("page-0", 2, load) == value(0, 2)
        assert load.calls == 1
        assert metric(cache, "error") == 0
    finally:
        await cache.aclose()
        await admin.aclose()


async def test_refused_redis_fails_open_fast_and_opens_the_breaker() -> None:
    cache = make_cache(f"redis://127.0.0.1:{free_port()}/0", threshold=3, cooldown=60)
    try:
        for i in range(6):
            value, elapsed = await timed(cache.fetch("k", 1, Loader(f"v{i}".encode())))
            assert value == f"v{i}".encode()
            assert elapsed < BOUNDED
        assert metric(cache, "error") == 3
        assert metric(cache, "bypass") == 3  # the breaker kept the last three away from Redis
        assert cache.breaker.state is BreakerState.OPEN
        assert breaker_gauge(cache) == 1
    finally:
        await cache.aclose()


async def test_hung_redis_fails_open_then_the_cache_comes_back(private_redis: RedisServer) -> None:
    cache = make_cache(private_redis.url, threshold=3, cooldown=1.0)
    admin = aioredis.Redis.from_url(private_redis.url)
    key = unique_key()
    try:
        await admin.config_resetstat()
        assert await cache.fetch(key, 1, Loader(b"v1")) == b"v1"  # warm connection + entry
        assert metric(cache, "miss") == 1
        private_redis.freeze()
        for generation in range(2, 22):
            value, elapsed = await timed(cache.fetch(key, generation, Loader(b"fresh")))
            assert value == b"fresh"
            assert elapsed < BOUNDED
        assert (metric(cache, "error"), metric(cache, "bypass")) == (3, 17)
        assert breaker_gauge(cache) == 1

        private_redis.resume()
        # While open, the breaker kept every request away from Redis: 1 warm-up + 3 failed GETs.
        commands = await admin.info("commandstats")
        assert commands["cmdstat_get"]["calls"] <= 4
        await asyncio.sleep(1.1)  # the cool-down passes; the next request probes Redis
        hits_before = metric(cache, "hit")
        for _ in range(5):
            assert await cache.fetch(key, 1, Loader(b"unused")) == b"v1"
        assert metric(cache, "hit") == hits_before + 5
        assert cache.breaker.state is BreakerState.CLOSED
        assert breaker_gauge(cache) == 0
    finally:
        await cache.aclose()
        await admin.aclose()


async def test_restart_with_persistence_reloads_old_keys_that_are_never_served(
    private_redis: RedisServer,
) -> None:
    cache = make_cache(private_redis.url, threshold=3, cooldown=0.3)
    admin_url = private_redis.url
    try:
        assert await cache.fetch("stats", 10, Loader(b"old")) == b"old"
        private_redis.restart()
        admin = aioredis.Redis.from_url(admin_url)
        assert await admin.get("taskflow:10:stats") == b"old"  # back from the AOF
        await admin.aclose()
        fresh = Loader(b"new")
        # The first command may hit a connection the restart closed: fail open, no retry.
        assert await cache.fetch("stats", 11, fresh) == b"new"
        assert await cache.fetch("stats", 11, fresh) == b"new"
        assert await cache.fetch("stats", 11, fresh) == b"new"
        assert fresh.calls <= 2
        assert metric(cache, "hit") >= 1
    finally:
        await cache.aclose()


async def test_a_full_client_pool_bypasses_without_blaming_redis(
    private_redis: RedisServer,
) -> None:
    name = app_name()
    cache = Cache(
        create_client(private_redis.url, name, max_connections=1),
        ttl=60,
        app_name=name,
        breaker_threshold=10,
    )
    try:
        await cache.fetch("warm", 1, Loader(b"w"))
        private_redis.freeze()
        stuck = asyncio.create_task(cache.fetch("a", 1, Loader(b"a")))
        await asyncio.sleep(0.02)  # "a" holds the only connection, waiting on the frozen Redis
        assert await cache.fetch("b", 1, Loader(b"b")) == b"b"
        assert metric(cache, "bypass") == 1
        assert not stuck.done()  # "b" did not wait for the frozen Redis
        assert await stuck == b"a"
        assert metric(cache, "error") == 1
    finally:
        private_redis.resume()
        await cache.aclose()


async def test_the_client_never_retries(private_redis: RedisServer) -> None:
    client = create_client(private_redis.url, app_name())
    try:
        await client.ping()
        private_redis.freeze()
        started = time.perf_counter()
        with pytest.raises(RedisTimeoutError):
            await client.get("anything")
        # One 150 ms socket timeout, not redis-py's default 5 s x retries.
        assert time.perf_counter() - started < BOUNDED
    finally:
        private_redis.resume()
        await client.aclose()


def test_generations_of_different_databases_or_server_lifetimes_never_coincide() -> None:
    seen = {
        compose_generation(value, oid, started)
        for value in (0, 1, 2**40)
        for oid in (16384, 16385, 2**32 - 1)
        for started in (1_700_000_000_000_000, 1_700_000_000_000_001)
    }
    assert len(seen) == 3 * 3 * 2
    assert compose_generation(5, 16384, 1) < compose_generation(6, 16384, 1)
