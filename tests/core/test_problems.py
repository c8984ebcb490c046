"""TaskflowPlugin's error mapper on a real Litestar app: catch-all 500, unavailable database 503."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from sqlalchemy import exc as sa_exc
from taskflow_core.plugin import TaskflowPlugin
from taskflow_core.problems import ProblemKind
from taskflow_core.settings import Settings

SECRET = "SELECT password FROM users -- internal detail"


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError(SECRET)


@get("/pool", sync_to_thread=False)
def pool() -> None:
    raise sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = Settings.from_env({"DATABASE_URL": database_url})
    app = Litestar(
        [boom, pool], plugins=[TaskflowPlugin(service="problems-test", settings=settings)]
    )
    async with AsyncTestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


async def test_unexpected_errors_are_a_generic_500_problem(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body == {
        "type": ProblemKind.INTERNAL.type_uri,
        "title": ProblemKind.INTERNAL.title,
        "status": 500,
        "detail": "An unexpected error occurred.",
    }
    assert "password" not in response.text
    assert "Traceback" not in response.text
    assert SECRET in caplog.text  # logged for operators, never answered
    assert "'trace_id'" in caplog.text  # correlates with the request's trace


async def test_an_exhausted_pool_is_503_with_retry_after(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/pool")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["type"] == ProblemKind.SERVICE_UNAVAILABLE.type_uri
    assert "QueuePool" not in response.text
