"""TaskService: what tasks-api does with the database and the cache, free of HTTP.

Reads and writes go through SQLAlchemy Core connections from the request pool's engine (no ORM
session). Pages of `GET /tasks` are cached under keys carrying the database generation and the
page body's format (taskflow_core.cache). ETags are `"<id>.<version>"`; a conditional write is
one statement, so of two writers holding one ETag exactly one succeeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import msgspec
from litestar.di import NamedDependency
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from taskflow_core.cache import Cache, body_format
from taskflow_core.problems import NotFound, PreconditionFailed, Problem

from tasks_api.cursor import MAX_ID, encode_cursor
from tasks_api.etag import IfMatch, etag
from tasks_api.queries import (
    ListQuery,
    Position,
    delete_task,
    insert_task,
    list_statement,
    select_task,
    task_exists,
    update_task,
)
from tasks_api.schemas import Task, TaskCreate, TaskPage, TaskPatch

# Cached pages are keyed by their body's format: a pod with another TaskPage shape never
# reads pages an older or newer pod cached in the same Redis.
PAGE_FORMAT = body_format(TaskPage)
TaskRecord: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as stored: its body and its current ETag."""

    task: Task
    etag: str


class TaskService:
    def __init__(self, engine: AsyncEngine, cache: Cache) -> None:
        self._engine = engine
        self._cache = cache

    async def list_page(self, query: ListQuery, cursor_token: str | None) -> bytes:
        """The JSON body of one page, from the cache when the database has not changed."""
        async with self._engine.connect() as conn:
            return await self._cache.fetch_current(
                conn, page_cache_key(query, cursor_token), lambda: _load_page(conn, query)
            )

    async def get(self, task_id: int) -> StoredTask:
        _check_id(task_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(select_task(task_id))).one_or_none()
        if row is None:
            raise _not_found(task_id)
        return _stored(row)

    async def create(self, data: TaskCreate) -> StoredTask:
        async with self._engine.begin() as conn:
            row = (await conn.execute(insert_task(msgspec.structs.asdict(data)))).one()
        return _stored(row)

    async def update(self, task_id: int, patch: TaskPatch, condition: IfMatch | None) -> StoredTask:
        _check_id(task_id)
        versions = _versions(condition)
        changes = patch.changes()
        async with self._engine.begin() as conn:
            row = None
            if changes:
                row = (await conn.execute(update_task(task_id, changes, versions))).one_or_none()
            if row is None:  # nothing to change: the task as it is, if it matches the condition
                row = (await conn.execute(select_task(task_id, versions))).one_or_none()
            if row is None:
                raise await _missing_or_stale(conn, task_id)
        return _stored(row)

    async def delete(self, task_id: int, condition: IfMatch | None) -> None:
        _check_id(task_id)
        async with self._engine.begin() as conn:
            deleted = (await conn.execute(delete_task(task_id, _versions(condition)))).first()
            if deleted is None:
                raise await _missing_or_stale(conn, task_id)


def provide_task_service(
    db_engine: NamedDependency[AsyncEngine], cache: NamedDependency[Cache]
) -> TaskService:
    """The `task_service` dependency of the /tasks handlers."""
    return TaskService(db_engine, cache)


def page_cache_key(query: ListQuery, cursor_token: str | None) -> str:
    """The cache key of one page: its body's format and every input that shapes the page."""
    normalized = msgspec.json.encode(
        [
            [p.value for p in query.priorities],
            query.completed,
            query.q,
            _utc_text(query.created_after),
            _utc_text(query.created_before),
            query.sort.value,
            query.limit,
            cursor_token,
        ]
    )
    return f"tasks:list:{PAGE_FORMAT}:{hashlib.sha256(normalized).hexdigest()}"


async def _load_page(conn: AsyncConnection, query: ListQuery) -> bytes:
    rows = (await conn.execute(list_statement(query))).all()
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        value = last.priority if query.sort.by_priority else last.created_at
        next_cursor = encode_cursor(query.sort, Position(value, last.id))
    return msgspec.json.encode(
        TaskPage(items=[_task(row) for row in page], next_cursor=next_cursor)
    )


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _task(row: TaskRecord) -> Task:
    return Task(
        id=row.id,
        title=row.title,
        description=row.description,
        completed=row.completed,
        priority=row.priority,
        created_at=row.created_at.astimezone(UTC),
        updated_at=row.updated_at.astimezone(UTC),
    )


def _stored(row: TaskRecord) -> StoredTask:
    return StoredTask(_task(row), etag(row.id, row.version))


def _versions(condition: IfMatch | None) -> frozenset[int] | None:
    """The versions a conditional write accepts; None when any version will do."""
    if condition is None or condition.any_version:
        return None
    return condition.versions


async def _missing_or_stale(conn: AsyncConnection, task_id: int) -> Problem:
    """Why a conditional write touched no row: the task is gone (404) or has changed (412)."""
    if (await conn.execute(task_exists(task_id))).first() is None:
        return _not_found(task_id)
    return PreconditionFailed(f"Task {task_id} has changed since the given ETag; read it again.")


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} does not exist.")


def _check_id(task_id: int) -> None:
    # Ids are positive bigints; anything else cannot exist (and must not reach the database).
    if not 1 <= task_id <= MAX_ID:
        raise _not_found(task_id)
