"""TaskflowPlugin's error mapper on a real Litestar app: catch-all 500, unavailable database 503."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from sqlalchemy import exc as sa_exc
from taskflow_core.plugin import TaskflowPlugin
from taskflow_core.problems import ProblemKind
from taskflow_core.settings import Settings

from devstack.servers import LOOPBACK, free_port

SECRET = "SELECT password FROM users -- internal detail"


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError(SECRET)


@get("/pool", sync_to_thread=False)
def pool() -> None:
    raise sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")


# What asyncpg raises when the database cannot serve, as the server words it (SQLSTATE, message).
UNAVAILABLE = [
    ("57P03", "the database system is shutting down"),
    ("57P03", "the database system is starting up"),
    ("57P03", "the database system is in recovery mode"),
    ("57P01", "terminating connection due to administrator command"),
    ("57P02", "terminating connection because of crash of another server process"),
    ("57014", "canceling statement due to statement timeout"),
    ("53300", "sorry, too many clients already"),
    ("08006", "connection failure"),
    ("25006", "cannot execute INSERT in a read-only transaction"),
]


@get("/database/{index:int}", sync_to_thread=False)
def database_error(index: FromPath[int]) -> None:
    sqlstate, message = UNAVAILABLE[index]
    raise asyncpg.PostgresError.new({"C": sqlstate, "M": message, "S": "FATAL"})


@get("/client-side/{kind:str}", sync_to_thread=False)
def client_side(kind: FromPath[str]) -> None:
    errors: dict[str, Exception] = {
        "lost": asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation"),
        "closed": asyncpg.InterfaceError("connection is closed"),
        "state": asyncpg.InternalClientError("cannot switch to state 12; another operation"),
        "refused": ConnectionRefusedError(111, "Connect call failed"),
        "deadline": TimeoutError("no database connection within DB_POOL_TIMEOUT + ..."),
    }
    raise errors[kind]


@get("/unique", sync_to_thread=False)
def unique() -> None:
    raise asyncpg.PostgresError.new({"C": "23505", "M": "duplicate key value", "S": "ERROR"})


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = Settings.from_env({"DATABASE_URL": database_url})
    app = Litestar(
        [boom, pool, database_error, client_side, unique],
        plugins=[TaskflowPlugin(service="problems-test", settings=settings)],
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
    assert "'trace_id'" not in caplog.text  # no exporter: no tracing at all


async def test_with_an_exporter_the_error_log_carries_the_trace_id(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens there: the span's export fails quietly, within the 1 s timeout.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{LOOPBACK}:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    settings = Settings.from_env({"DATABASE_URL": database_url})
    app = Litestar([boom], plugins=[TaskflowPlugin(service="problems-test", settings=settings)])
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/boom")).status_code == 500
    # The app's own JSON logging (on stdout) is what operators read.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    (error,) = [line for line in lines if line["event"] == "unhandled error"]
    (access,) = [line for line in lines if line.get("logger") == "taskflow.access"]
    assert len(error["trace_id"]) == 32  # correlates with the request's trace
    assert access["trace_id"] == error["trace_id"]


async def test_an_exhausted_pool_is_503_with_retry_after(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/pool")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["type"] == ProblemKind.SERVICE_UNAVAILABLE.type_uri
    assert "QueuePool" not in response.text


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == ProblemKind.SERVICE_UNAVAILABLE.type_uri


@pytest.mark.parametrize("index", range(len(UNAVAILABLE)), ids=[m for _, m in UNAVAILABLE])
async def test_a_database_that_cannot_serve_is_503_with_retry_after(
    client: AsyncTestClient[Litestar], index: int
) -> None:
    response = await client.get(f"/database/{index}")
    assert_unavailable(response)
    assert UNAVAILABLE[index][1] not in response.text  # the server's words stay in the log


@pytest.mark.parametrize("kind", ["lost", "closed", "state", "refused", "deadline"])
async def test_a_lost_refused_or_timed_out_connection_is_503(
    client: AsyncTestClient[Litestar], kind: str
) -> None:
    assert_unavailable(await client.get(f"/client-side/{kind}"))


async def test_other_database_errors_stay_500(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/unique")).status_code == 500
