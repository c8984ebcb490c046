"""Spans kept in memory: the route-templated server span continues the caller's trace and has
the request's asyncpg statements and Redis commands as children; without a tracer nothing is
patched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from taskflow_core.settings import Settings
from tasks_api.app import create_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def client(
    database_url: str, redis_url: str, spans: InMemorySpanExporter
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    settings = Settings.from_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    async with AsyncTestClient(app=create_app(settings, tracer_provider=provider)) as test_client:
        yield test_client


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _scope(span: ReadableSpan) -> str:
    return span.instrumentation_scope.name if span.instrumentation_scope else ""


def _children(parent: ReadableSpan, found: list[ReadableSpan]) -> list[ReadableSpan]:
    parent_id = parent.context.span_id
    return [s for s in found if s.parent is not None and s.parent.span_id == parent_id]


async def test_the_server_span_continues_the_callers_trace_with_database_and_redis_children(
    client: AsyncTestClient[Litestar], spans: InMemorySpanExporter
) -> None:
    assert (await client.post("/tasks", json={"title": "traced"})).status_code == 201
    spans.clear()
    # A page read: the generation from PostgreSQL, then the cached body from Redis (or a miss).
    response = await client.get("/tasks?priority=medium", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    found = list(spans.get_finished_spans())
    servers = [s for s in found if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /tasks"]
    server = servers[0]
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/tasks"
    assert _hex(server.context.trace_id, 32) == TRACE_ID
    assert server.parent is not None
    assert _hex(server.parent.span_id, 16) == PARENT_ID
    children = _children(server, found)
    scopes = {_scope(s) for s in children if s.kind is SpanKind.CLIENT}
    assert "opentelemetry.instrumentation.asyncpg" in scopes, scopes
    assert "opentelemetry.instrumentation.redis" in scopes, scopes
    assert all(_hex(s.context.trace_id, 32) == TRACE_ID for s in children)
    statements = [s for s in children if _scope(s).endswith("asyncpg")]
    assert any("SELECT" in str((s.attributes or {}).get("db.statement", "")) for s in statements)


async def test_probes_are_not_traced_nor_their_statements(
    client: AsyncTestClient[Litestar], spans: InMemorySpanExporter
) -> None:
    spans.clear()
    assert (await client.get("/ready")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    assert spans.get_finished_spans() == ()


async def test_without_an_exporter_asyncpg_and_redis_are_left_unpatched(database_url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": database_url})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        assert (await test_client.get("/tasks")).status_code == 200
        assert not hasattr(asyncpg.connection.Connection.fetch, "__wrapped__")
        assert not hasattr(redis.asyncio.Redis.execute_command, "__wrapped__")
