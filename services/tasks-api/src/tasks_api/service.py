"""TaskService: what tasks-api does with the database and the cache, free of HTTP.

Reads and writes are single statements on the request pool's asyncpg connections (autocommit:
each statement is its own transaction, triggers included). Pages of `GET /tasks` are cached
under keys carrying the database generation and the page body's format (taskflow_core.cache).
ETags are `"<id>.<version>"`; a conditional write is one statement, so of two writers holding
one ETag exactly one succeeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import structlog
from taskflow_core.cache import Cache, body_format
from taskflow_core.engine import RequestPool
from taskflow_core.models import Priority
from taskflow_core.problems import IdempotencyKeyReused, NotFound, PreconditionFailed, Problem

from tasks_api import idempotency
from tasks_api.cursor import MAX_ID, encode_cursor
from tasks_api.etag import IfMatch, etag
from tasks_api.queries import (
    ListQuery,
    Position,
    Statement,
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
_ENCODER = msgspec.json.Encoder()
_PRIORITY = {p.value: p for p in Priority}  # a dict lookup costs less than Priority(text)

log = structlog.get_logger("taskflow.tasks")


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as stored: its body and its current ETag."""

    task: Task
    etag: str


@dataclass(frozen=True, slots=True)
class KeyedCreation:
    """The 201 of a POST /tasks with an Idempotency-Key: first answered, or replayed."""

    task_id: int
    etag: str
    body: bytes
    replayed: bool


class TaskService:
    """One per app (the `task_service` dependency)."""

    def __init__(self, pool: RequestPool, cache: Cache) -> None:
        self._pool = pool
        self._cache = cache
        self._next_purge = time.monotonic() + idempotency.PURGE_INTERVAL
        self._purging: asyncio.Task[None] | None = None

    async def list_page(self, query: ListQuery, cursor_token: str | None) -> bytes:
        """The JSON body of one page, from the cache when the database has not changed."""
        return await self._cache.fetch_current(
            self._pool, page_cache_key(query, cursor_token), lambda conn: load_page(conn, query)
        )

    async def get(self, task_id: int) -> StoredTask:
        _check_id(task_id)
        async with self._pool.connection() as conn:
            row = await _fetchrow(conn, select_task(task_id))
        if row is None:
            raise _not_found(task_id)
        return _stored(row)

    async def create(self, data: TaskCreate) -> StoredTask:
        async with self._pool.connection() as conn:
            return _stored(await _fetchrow(conn, _insert(data)))

    async def create_once(self, data: TaskCreate, key: str) -> KeyedCreation:
        """Create the task unless `key` already created one from the same request: then the
        first 201 again. The same key with another request is 422."""
        self._maybe_purge()
        fingerprint = idempotency.fingerprint(data)
        async with self._pool.transaction() as conn:
            if await conn.fetchval(idempotency.CLAIM, key, fingerprint) is not None:
                stored = _stored(await _fetchrow(conn, _insert(data)))
                body = _ENCODER.encode(stored.task)
                await conn.execute(
                    idempotency.RECORD, key, stored.task.id, stored.etag, body.decode()
                )
                return KeyedCreation(stored.task.id, stored.etag, body, replayed=False)
            prior = await conn.fetchrow(idempotency.PRIOR, key)
        # Claimed by a transaction that committed: its row is complete (recorded in it).
        if prior is None or prior["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused(
                f"{idempotency.HEADER} {key!r} was used for another request in the last "
                f"{idempotency.LIFETIME_HOURS} hours; use a new key for a new request."
            )
        return KeyedCreation(prior["task_id"], prior["etag"], prior["body"].encode(), True)

    async def purge_expired_keys(self) -> int:
        """Delete keys past their lifetime, one batch per statement; returns how many."""
        deleted = 0
        while True:
            async with self._pool.connection() as conn:
                status = await conn.execute(idempotency.PURGE)
            batch = int(status.rpartition(" ")[2])
            deleted += batch
            if batch < idempotency.PURGE_BATCH:
                return deleted

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now < self._next_purge or (self._purging is not None and not self._purging.done()):
            return
        self._next_purge = now + idempotency.PURGE_INTERVAL
        self._purging = asyncio.get_running_loop().create_task(self._purge_in_background())

    async def _purge_in_background(self) -> None:
        try:
            deleted = await self.purge_expired_keys()
        except Exception as exc:  # the next interval tries again; requests never see it
            log.warning("idempotency keys: purge failed", error=type(exc).__name__)
        else:
            log.info("idempotency keys: purged the expired ones", deleted=deleted)

    async def update(self, task_id: int, patch: TaskPatch, condition: IfMatch | None) -> StoredTask:
        _check_id(task_id)
        versions = _versions(condition)
        changes = patch.changes()
        async with self._pool.connection() as conn:
            row = None
            if changes:
                row = await _fetchrow(conn, update_task(task_id, changes, versions))
            if row is None:  # nothing to change: the task as it is, if it matches the condition
                row = await _fetchrow(conn, select_task(task_id, versions))
            if row is None:
                raise await _missing_or_stale(conn, task_id)
        return _stored(row)

    async def delete(self, task_id: int, condition: IfMatch | None) -> None:
        _check_id(task_id)
        async with self._pool.connection() as conn:
            deleted = await _fetchrow(conn, delete_task(task_id, _versions(condition)))
            if deleted is None:
                raise await _missing_or_stale(conn, task_id)


def page_cache_key(query: ListQuery, cursor_token: str | None) -> str:
    """The cache key of one page: its body's format and every input that shapes the page."""
    normalized = _ENCODER.encode(
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


async def load_page(conn: asyncpg.Connection, query: ListQuery) -> bytes:
    """The JSON body of one page (TaskPage) read on `conn`."""
    statement = list_statement(query)
    rows: Sequence[asyncpg.Record] = await conn.fetch(statement.sql, *statement.params)
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        value = _PRIORITY[last["priority"]] if query.sort.by_priority else last["created_at"]
        next_cursor = encode_cursor(query.sort, Position(value, last["id"]))
    return _ENCODER.encode(TaskPage(items=[_task(row) for row in page], next_cursor=next_cursor))


async def _fetchrow(conn: asyncpg.Connection, statement: Statement) -> asyncpg.Record | None:
    return await conn.fetchrow(statement.sql, *statement.params)


def _insert(data: TaskCreate) -> Statement:
    return insert_task(data.title, data.description, data.completed, data.priority.value)


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _task(row: Any) -> Task:
    # asyncpg returns timestamptz in UTC and the priority enum as its text; fields in order.
    task_id, title, description, completed, priority, created_at, updated_at, _ = row
    return Task(task_id, title, description, completed, _PRIORITY[priority], created_at, updated_at)


def _stored(row: asyncpg.Record | None) -> StoredTask:
    assert row is not None  # INSERT/UPDATE/SELECT ... of a row known to exist
    return StoredTask(_task(row), etag(row["id"], row["version"]))


def _versions(condition: IfMatch | None) -> frozenset[int] | None:
    """The versions a conditional write accepts; None when any version will do."""
    if condition is None or condition.any_version:
        return None
    return condition.versions


async def _missing_or_stale(conn: asyncpg.Connection, task_id: int) -> Problem:
    """Why a conditional write touched no row: the task is gone (404) or has changed (412)."""
    if await _fetchrow(conn, task_exists(task_id)) is None:
        return _not_found(task_id)
    return PreconditionFailed(f"Task {task_id} has changed since the given ETag; read it again.")


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} does not exist.")


def _check_id(task_id: int) -> None:
    # Ids are positive bigints; anything else cannot exist (and must not reach the database).
    if not 1 <= task_id <= MAX_ID:
        raise _not_found(task_id)
