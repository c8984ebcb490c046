"""How the /tasks operations are documented beyond their signatures (OpenAPI Operation objects).

Links: a created or read task links to reading, updating and deleting it, passing its id and,
for the writes, its ETag as If-Match; fuzzers follow them to exercise create → read → update →
delete. Litestar documents a 400 for every operation with parameters; reading and deleting a
task take no parameter that can be malformed (a path that is no id is a 404), so theirs go.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import Link, OpenAPIResponse, Operation

_TASK_ID = "$response.body#/id"
_ETAG = "$response.header.ETag"

NEXT_STEPS = {
    "GetTask": Link(operation_id="getTask", parameters={"path.task_id": _TASK_ID}),
    "UpdateTask": Link(
        operation_id="updateTask",
        parameters={"path.task_id": _TASK_ID, "header.If-Match": _ETAG},
    ),
    "DeleteTask": Link(
        operation_id="deleteTask",
        parameters={"path.task_id": _TASK_ID, "header.If-Match": _ETAG},
    ),
}


def _link(operation: Operation, status: str) -> None:
    response = (operation.responses or {}).get(status)
    if isinstance(response, OpenAPIResponse):
        response.links = dict(NEXT_STEPS)


def _no_bad_request(operation: Operation) -> None:
    if operation.responses:
        operation.responses.pop("400", None)


@dataclass
class CreateTaskOperation(Operation):
    """createTask: the 201 links to the task's read, update and delete."""

    def __post_init__(self) -> None:
        _link(self, "201")


@dataclass
class GetTaskOperation(Operation):
    """getTask: the 200 links onwards; no 400."""

    def __post_init__(self) -> None:
        _link(self, "200")
        _no_bad_request(self)


@dataclass
class UpdateTaskOperation(Operation):
    """updateTask: the 200 links onwards."""

    def __post_init__(self) -> None:
        _link(self, "200")


@dataclass
class DeleteTaskOperation(Operation):
    """deleteTask: no 400."""

    def __post_init__(self) -> None:
        _no_bad_request(self)
