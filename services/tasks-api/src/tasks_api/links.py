"""OpenAPI links between the /tasks operations: what a client can do next with a response.

A created or read task links to reading, updating and deleting it, passing its id and, for the
writes, its ETag as If-Match; fuzzers follow them to exercise create → read → update → delete.
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


@dataclass
class CreatedTaskOperation(Operation):
    """createTask: the 201 links to the task's read, update and delete."""

    def __post_init__(self) -> None:
        _link(self, "201")


@dataclass
class TaskOperation(Operation):
    """getTask and updateTask: the 200 links to the task's read, update and delete."""

    def __post_init__(self) -> None:
        _link(self, "200")
