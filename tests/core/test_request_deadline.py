"""The request pool on a real PostgreSQL: a request's database work shares one deadline, pool
wait + connect + statements; each wait is bounded and the timed-out connection is not reused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from taskflow_core.deadline import request_deadline
from taskflow_core.engine import RequestPool
from taskflow_core.settings import PoolSettings

from devstack.servers import LOOPBACK, free_port

SETTINGS = PoolSettings(size=1, timeout=0.2, connect_timeout=0.2, statement_timeout=0.6)
BOUND = SETTINGS.request_bound  # 1.0 s
SLACK = 0.5  # a busy machine's scheduling noise


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[RequestPool]:
    opened = RequestPool(database_url, application_name="deadline-test", pool=SETTINGS)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def sleep_in_db(pool: RequestPool, seconds: float) -> None:
    async with pool.connection() as conn:
        await conn.execute(f"SELECT pg_sleep({seconds})")


async def test_two_connections_of_one_request_share_its_deadline(pool: RequestPool) -> None:
    started = time.monotonic()
    with request_deadline():
        await sleep_in_db(pool, 0.5)  # within the statement timeout
        with pytest.raises(TimeoutError):  # alone it would be too, not both in one bound
            await sleep_in_db(pool, 0.5)
    assert time.monotonic() - started <= BOUND + SLACK


async def test_without_a_request_each_connection_has_its_own_bound(pool: RequestPool) -> None:
    await sleep_in_db(pool, 0.5)
    await sleep_in_db(pool, 0.5)


async def test_a_long_statement_ends_at_the_statement_timeout(pool: RequestPool) -> None:
    started = time.monotonic()
    # PostgreSQL's statement_timeout or the request's deadline, whichever fires first.
    with pytest.raises((TimeoutError, asyncpg.QueryCanceledError)):
        await sleep_in_db(pool, 30)
    assert time.monotonic() - started <= BOUND + SLACK
    await sleep_in_db(pool, 0)  # the pool still serves: the cancelled connection was dropped


async def test_an_exhausted_pool_answers_within_the_pool_and_connect_timeouts(
    pool: RequestPool,
) -> None:
    holder = asyncio.create_task(sleep_in_db(pool, 0.5))
    await asyncio.sleep(0.1)  # the only connection is taken
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="DB_POOL_TIMEOUT"):
        await sleep_in_db(pool, 0)
    waited = time.monotonic() - started
    assert waited <= SETTINGS.timeout + SETTINGS.connect_timeout + SLACK
    await holder


async def test_a_refused_server_fails_within_the_connect_timeout() -> None:
    nobody = f"postgresql://postgres@{LOOPBACK}:{free_port()}/postgres"
    refused = RequestPool(nobody, application_name="deadline-test", pool=SETTINGS)
    await refused.open()
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            await sleep_in_db(refused, 0)
        assert time.monotonic() - started <= SETTINGS.timeout + SETTINGS.connect_timeout + SLACK
    finally:
        await refused.close()
