"""The /tasks resource: list (keyset pages through the cache), read, create, update, delete."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED
from sqlalchemy import Row, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession
from taskflow_core.app import CACHE_STATE_KEY
from taskflow_core.cache import Cache
from taskflow_core.problems import (
    NotFound,
    PreconditionFailed,
    Problem,
    ValidationFailed,
    problem_specs,
)
from taskflow_core.schema import Priority
from taskflow_core.schema import Task as TaskRow
from taskflow_core.task_queries import (
    DEFAULT_SORT,
    TASK_COLUMNS,
    ListQuery,
    Position,
    Sort,
    list_statement,
)

from tasks_api import cursor
from tasks_api.body import json_body
from tasks_api.etag import IfMatch, etag, none_match_hits, parse_if_match
from tasks_api.schemas import Task, TaskCreate, TaskPage, TaskPatch

MAX_ID = cursor.MAX_ID
TaskRecord: TypeAlias = Row[*tuple[Any, ...]]

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1..100.")]
Timestamp = Annotated[
    datetime | None,
    QueryParameter(description="RFC 3339 timestamp with an offset; the bound is exclusive."),
]
IfNoneMatchHeader = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", description="ETag(s) of the copy the client holds."),
]
IfMatchHeader = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description="ETag(s) the task must still have, or `*`."),
]


class TaskController(Controller):
    path = "/tasks"
    tags = ["tasks"]

    @get(
        operation_id="listTasks",
        summary="List tasks, newest first by default",
        media_type=MediaType.JSON,
        responses={
            200: ResponseSpec(data_container=TaskPage, description="One page of tasks"),
            **problem_specs(400, 503),
        },
    )
    async def list_tasks(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        priority: Annotated[
            list[Priority] | None, QueryParameter(description="Repeatable priority filter.")
        ] = None,
        completed: Annotated[bool | None, QueryParameter(description="`true` or `false`.")] = None,
        q: Annotated[
            str | None, QueryParameter(description="Case-insensitive substring of the title.")
        ] = None,
        created_after: Timestamp = None,
        created_before: Timestamp = None,
        sort: Annotated[Sort, QueryParameter(description="Sort order.")] = DEFAULT_SORT,
        limit: Limit = 50,
        cursor_token: Annotated[
            str | None, QueryParameter(name="cursor", description="`next_cursor` of a page.")
        ] = None,
    ) -> Response[bytes]:
        """Filtered, sorted, keyset-paginated tasks; pages are cached per database generation."""
        query = ListQuery(
            priorities=tuple(sorted(set(priority or ()), key=list(Priority).index)),
            completed=_strict_bool(request, completed),
            q=_search_text(q),
            created_after=_aware("created_after", created_after),
            created_before=_aware("created_before", created_before),
            sort=sort,
            limit=_strict_limit(request, limit),
            position=None if cursor_token is None else cursor.decode(cursor_token, sort),
        )
        cache: Cache = request.app.state[CACHE_STATE_KEY]

        async def load() -> bytes:
            return await _load_page(db_session, query)

        body = await cache.fetch_current(db_session, _cache_key(query, cursor_token), load)
        return Response(body, media_type=MediaType.JSON)

    @get(
        "/{task_id:int}",
        operation_id="getTask",
        summary="Read one task",
        responses=problem_specs(404, 503),
    )
    async def get_task(
        self,
        db_session: NamedDependency[AsyncSession],
        task_id: FromPath[int],
        if_none_match: IfNoneMatchHeader = None,
    ) -> Response[Task]:
        _check_id(task_id)
        row = (
            await db_session.execute(select(*TASK_COLUMNS).where(TaskRow.id == task_id))
        ).one_or_none()
        if row is None:
            raise _not_found(task_id)
        current = etag(row.id, row.version)
        if if_none_match is not None and none_match_hits(if_none_match, current):
            # The client's copy is current: no body (RFC 9110 §13.1.2).
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": current})  # type: ignore[arg-type]
        return _task_response(row)

    @post(
        operation_id="createTask",
        summary="Create a task",
        status_code=HTTP_201_CREATED,
        before_request=json_body(TaskCreate),
        responses=problem_specs(400, 413, 415, 503),
    )
    async def create_task(
        self, db_session: NamedDependency[AsyncSession], data: JSONBody[TaskCreate]
    ) -> Response[Task]:
        values = msgspec.structs.asdict(data)
        row = (
            await db_session.execute(insert(TaskRow).values(**values).returning(*TASK_COLUMNS))
        ).one()
        await db_session.commit()
        response = _task_response(row, status_code=HTTP_201_CREATED)
        response.headers["Location"] = f"/tasks/{row.id}"
        return response

    @patch(
        "/{task_id:int}",
        operation_id="updateTask",
        summary="Change some fields of a task",
        before_request=json_body(TaskPatch),
        responses=problem_specs(400, 404, 412, 413, 415, 503),
    )
    async def update_task(
        self,
        db_session: NamedDependency[AsyncSession],
        task_id: FromPath[int],
        data: JSONBody[TaskPatch],
        if_match: IfMatchHeader = None,
    ) -> Response[Task]:
        _check_id(task_id)
        condition = parse_if_match(if_match, task_id)
        changes = data.changes()
        if changes:
            statement: Any = update(TaskRow).values(**changes).returning(*TASK_COLUMNS)
        else:
            statement = select(*TASK_COLUMNS)
        statement = statement.where(TaskRow.id == task_id, *_version_filter(condition))
        row = (await db_session.execute(statement)).one_or_none()
        if row is None:
            raise await _missing_or_stale(db_session, task_id)
        await db_session.commit()
        return _task_response(row)

    @delete(
        "/{task_id:int}",
        operation_id="deleteTask",
        summary="Delete a task",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_specs(404, 412, 503),
    )
    async def delete_task(
        self,
        db_session: NamedDependency[AsyncSession],
        task_id: FromPath[int],
        if_match: IfMatchHeader = None,
    ) -> None:
        _check_id(task_id)
        condition = parse_if_match(if_match, task_id)
        statement = (
            sql_delete(TaskRow)
            .where(TaskRow.id == task_id, *_version_filter(condition))
            .returning(TaskRow.id)
        )
        if (await db_session.execute(statement)).one_or_none() is None:
            raise await _missing_or_stale(db_session, task_id)
        await db_session.commit()


async def _load_page(session: AsyncSession, query: ListQuery) -> bytes:
    rows = (await session.execute(list_statement(query))).all()
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        value = last.priority if query.sort.by_priority else last.created_at
        next_cursor = cursor.encode(query.sort, Position(value, last.id))
    return msgspec.json.encode(
        TaskPage(items=[_task(row) for row in page], next_cursor=next_cursor)
    )


def _cache_key(query: ListQuery, cursor_token: str | None) -> str:
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
    return "tasks:list:" + hashlib.sha256(normalized).hexdigest()


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


def _task_response(row: TaskRecord, status_code: int = 200) -> Response[Task]:
    return Response(
        _task(row), status_code=status_code, headers={"ETag": etag(row.id, row.version)}
    )


def _version_filter(condition: IfMatch | None) -> list[Any]:
    if condition is None or condition.any_version:
        return []
    return [TaskRow.version.in_(sorted(condition.versions))]


async def _missing_or_stale(session: AsyncSession, task_id: int) -> Problem:
    """Why a conditional write touched no row: the task is gone (404) or has changed (412)."""
    exists = (await session.execute(select(TaskRow.id).where(TaskRow.id == task_id))).first()
    if exists is None:
        return _not_found(task_id)
    return PreconditionFailed(f"Task {task_id} has changed since the given ETag; read it again.")


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} does not exist.")


def _check_id(task_id: int) -> None:
    # Ids are positive bigints; anything else cannot exist (and must not reach the database).
    if not 1 <= task_id <= MAX_ID:
        raise _not_found(task_id)


def _strict_bool(request: Request[Any, Any, Any], value: bool | None) -> bool | None:
    # Litestar accepts 1/0/yes/no too; the contract says exactly `true` or `false`.
    raw = request.query_params.get("completed")
    if raw is not None and raw not in {"true", "false"}:
        raise ValidationFailed("completed", "must be `true` or `false`")
    return value


def _strict_limit(request: Request[Any, Any, Any], value: int) -> int:
    # Litestar also takes `1.0`; the contract's limit is a plain integer.
    if not all(raw.isascii() and raw.isdigit() for raw in request.query_params.getall("limit", [])):
        raise ValidationFailed("limit", "must be an integer from 1 to 100")
    return value


def _search_text(q: str | None) -> str | None:
    if q is not None and "\x00" in q:
        raise ValidationFailed("q", "must not contain NUL characters")
    return q or None


def _aware(name: str, moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValidationFailed(name, "an RFC 3339 timestamp needs a UTC offset (e.g. `Z`)")
    if not cursor.representable_in_utc(moment):
        raise ValidationFailed(name, "the instant must fall within years 1..9999 in UTC")
    return moment
