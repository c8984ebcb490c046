"""The /tasks resource over HTTP: parameters, status codes, headers; TaskService does the rest."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from litestar import Controller, MediaType, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED
from taskflow_core.models import Priority
from taskflow_core.problems import problem_specs

from tasks_api import idempotency, params
from tasks_api.body import json_body
from tasks_api.cursor import CURSOR_PATTERN, MAX_CURSOR_CHARS, decode_cursor
from tasks_api.etag import none_match_hits, parse_if_match
from tasks_api.operations import (
    CreateTaskOperation,
    DeleteTaskOperation,
    GetTaskOperation,
    UpdateTaskOperation,
)
from tasks_api.queries import DEFAULT_SORT, ListQuery, Sort
from tasks_api.schemas import Task, TaskCreate, TaskPage, TaskPatch
from tasks_api.service import StoredTask, TaskService

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1..100.")]
Timestamp = Annotated[
    datetime | None,
    QueryParameter(description="RFC 3339 timestamp with an offset; the bound is exclusive."),
]
IfNoneMatchHeader = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", description="ETag(s) of the copy the client holds."),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=idempotency.HEADER,
        schema_extra={"pattern": idempotency.KEY_PATTERN},
        description=(
            "Makes the create safe to retry (draft-ietf-httpapi-idempotency-key-header): a "
            "structured-field string of 1-255 printable ASCII characters, e.g. "
            '`"8e03978e-40d5-43e8-bc93-6894a57f9324"` (a bare value without quotes names the '
            "same key). Within 24 hours, a request with the same key and the same body gets the "
            "first request's 201 again (`Idempotent-Replayed: true`) and creates nothing; the "
            "same key with another body is 422."
        ),
    ),
]
IfMatchHeader = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description="ETag(s) the task must still have, or `*`."),
]


REPLAYED_HEADER = "Idempotent-Replayed"


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
        task_service: NamedDependency[TaskService],
        priority: Annotated[
            list[Priority] | None, QueryParameter(description="Repeatable priority filter.")
        ] = None,
        completed: Annotated[bool | None, QueryParameter(description="`true` or `false`.")] = None,
        q: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[^\x00]*$", description="Case-insensitive substring of the title."
            ),
        ] = None,
        created_after: Timestamp = None,
        created_before: Timestamp = None,
        sort: Annotated[Sort, QueryParameter(description="Sort order.")] = DEFAULT_SORT,
        limit: Limit = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                pattern=CURSOR_PATTERN,
                max_length=MAX_CURSOR_CHARS,
                description="`next_cursor` of the previous page, unchanged (opaque).",
            ),
        ] = None,
    ) -> Response[bytes]:
        """Filtered, sorted, keyset-paginated tasks; pages are cached per database generation."""
        params.single_values(request)
        query = ListQuery(
            priorities=tuple(sorted(set(priority or ()), key=list(Priority).index)),
            completed=params.strict_bool(request, completed),
            q=params.search_text(q),
            created_after=params.rfc3339(request, "created_after", created_after),
            created_before=params.rfc3339(request, "created_before", created_before),
            sort=sort,
            limit=params.strict_limit(request, limit),
            position=None if cursor is None else decode_cursor(cursor, sort),
        )
        body = await task_service.list_page(query, cursor)
        return Response(body, media_type=MediaType.JSON)

    @get(
        "/{task_id:int}",
        operation_id="getTask",
        operation_class=GetTaskOperation,
        summary="Read one task",
        responses=problem_specs(404, 503),
    )
    async def get_task(
        self,
        request: Request[Any, Any, Any],
        task_service: NamedDependency[TaskService],
        task_id: FromPath[int],
        if_none_match: IfNoneMatchHeader = None,
    ) -> Response[Task]:
        stored = await task_service.get(params.canonical_id(request, task_id))
        if if_none_match is not None and none_match_hits(if_none_match, stored.etag):
            # The client's copy is current: no body (RFC 9110 §13.1.2).
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": stored.etag})  # type: ignore[arg-type]
        return _task_response(stored)

    @post(
        operation_id="createTask",
        operation_class=CreateTaskOperation,
        summary="Create a task",
        status_code=HTTP_201_CREATED,
        before_request=json_body(TaskCreate),
        responses=problem_specs(400, 413, 415, 422, 503),
    )
    async def create_task(
        self,
        request: Request[Any, Any, Any],
        task_service: NamedDependency[TaskService],
        data: JSONBody[TaskCreate],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Task]:
        key = idempotency.parse_key(request.headers.getall(idempotency.HEADER, []))
        if key is None:
            stored = await task_service.create(data)
            response = _task_response(stored, status_code=HTTP_201_CREATED)
            response.headers["Location"] = f"/tasks/{stored.task.id}"
            return response
        created = await task_service.create_once(data, key)
        headers = {"ETag": created.etag, "Location": f"/tasks/{created.task_id}"}
        if created.replayed:
            headers[REPLAYED_HEADER] = "true"
        # The Task as first encoded, byte for byte, on a replay too (the annotation documents it).
        answer = Response(
            created.body, status_code=HTTP_201_CREATED, media_type=MediaType.JSON, headers=headers
        )
        return cast("Response[Task]", answer)

    @patch(
        "/{task_id:int}",
        operation_id="updateTask",
        operation_class=UpdateTaskOperation,
        summary="Change some fields of a task",
        before_request=json_body(TaskPatch),
        responses=problem_specs(400, 404, 412, 413, 415, 503),
    )
    async def update_task(
        self,
        request: Request[Any, Any, Any],
        task_service: NamedDependency[TaskService],
        task_id: FromPath[int],
        data: JSONBody[TaskPatch],
        if_match: IfMatchHeader = None,
    ) -> Response[Task]:
        task_id = params.canonical_id(request, task_id)
        stored = await task_service.update(task_id, data, parse_if_match(if_match, task_id))
        return _task_response(stored)

    @delete(
        "/{task_id:int}",
        operation_id="deleteTask",
        operation_class=DeleteTaskOperation,
        summary="Delete a task",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_specs(404, 412, 503),
    )
    async def delete_task(
        self,
        request: Request[Any, Any, Any],
        task_service: NamedDependency[TaskService],
        task_id: FromPath[int],
        if_match: IfMatchHeader = None,
    ) -> None:
        task_id = params.canonical_id(request, task_id)
        await task_service.delete(task_id, parse_if_match(if_match, task_id))


def _task_response(stored: StoredTask, status_code: int = 200) -> Response[Task]:
    return Response(stored.task, status_code=status_code, headers={"ETag": stored.etag})
