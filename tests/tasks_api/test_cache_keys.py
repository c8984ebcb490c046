"""Cache keys of tasks-api pages carry the page body's format, derived from its structs: a pod
whose TaskPage differs never serves a page another pod cached in the same Redis."""

from __future__ import annotations

from datetime import datetime

import msgspec
import redis.asyncio as aioredis
from taskflow_core.cache import body_format, cache_key, current_generation
from taskflow_core.models import Priority
from tasks_api.queries import ListQuery
from tasks_api.schemas import TaskPage
from tasks_api.service import PAGE_FORMAT, page_cache_key

from tests.support.apiserver import in_process
from tests.support.engines import request_connection


class Task(msgspec.Struct):
    id: int
    title: str
    description: str | None
    completed: bool
    priority: Priority
    created_at: datetime
    updated_at: datetime


class TaskWithOwner(Task):
    owner: str  # a field added by a later release


class TaskWithTextId(msgspec.Struct):
    id: str  # the same field names, another type
    title: str
    description: str | None
    completed: bool
    priority: Priority
    created_at: datetime
    updated_at: datetime


def page_of(item: type[msgspec.Struct]) -> type[msgspec.Struct]:
    return msgspec.defstruct("TaskPage", [("items", list[item]), ("next_cursor", str | None)])  # type: ignore[valid-type]


def test_the_format_follows_the_fields_and_their_types() -> None:
    assert body_format(page_of(Task)) == body_format(page_of(Task))  # stable
    assert body_format(page_of(Task)) == PAGE_FORMAT  # the shape of today's TaskPage
    assert body_format(page_of(TaskWithOwner)) != PAGE_FORMAT
    assert body_format(page_of(TaskWithTextId)) != PAGE_FORMAT
    assert body_format(TaskPage) == PAGE_FORMAT


def test_every_page_key_carries_the_format() -> None:
    key = page_cache_key(ListQuery(), None)
    assert key.startswith(f"tasks:list:{PAGE_FORMAT}:")


async def test_a_page_cached_under_another_format_is_never_served(
    database_url: str, redis_url: str
) -> None:
    query, path = ListQuery(priorities=(Priority.HIGH,)), "/tasks?priority=high"
    planted = b'{"items":[{"id":1,"title":"from another release"}],"next_cursor":null}'
    admin = aioredis.Redis.from_url(redis_url)
    async with in_process(database_url, REDIS_URL=redis_url) as client:
        assert (await client.post("/tasks", json={"title": "real", "priority": "high"})).is_success
        async with request_connection(database_url) as conn:
            generation = await current_generation(conn)
        ours = cache_key(page_cache_key(query, None), generation)
        theirs = ours.replace(f":{PAGE_FORMAT}:", ":0123456789ab:")
        try:
            await admin.set(theirs, planted)
            served = (await client.get(path)).json()
            assert [task["title"] for task in served["items"]] == ["real"]
            # The same plant under this release's own key is served: the keys are the ones used.
            await admin.set(ours, planted)
            assert (await client.get(path)).content == planted
        finally:
            await admin.delete(ours, theirs)
            await admin.aclose()
