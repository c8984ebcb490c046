"""The keyset list query of GET /tasks: filters, sort with id tie-breaks, one extra row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, select, tuple_
from taskflow_core.schema import Priority, Task, priority_type

from tasks_api.cursor import Position
from tasks_api.sorting import Sort

TASK_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.completed,
    Task.priority,
    Task.created_at,
    Task.updated_at,
    Task.version,
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    priorities: tuple[Priority, ...] = ()
    completed: bool | None = None
    q: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    sort: Sort = Sort.CREATED_AT_DESC
    limit: int = 50
    position: Position | None = None


def list_statement(query: ListQuery) -> Select[*tuple[Any, ...]]:
    """SELECT of one page plus one row (its presence means there is a next page)."""
    sort_column: ColumnElement[Any] = (
        Task.priority.expression if query.sort.by_priority else Task.created_at.expression
    )
    statement = select(*TASK_COLUMNS).where(*_filters(query))
    if query.position is not None:
        statement = statement.where(_after(query, sort_column, query.position))
    if query.sort.descending:
        statement = statement.order_by(sort_column.desc(), Task.id.desc())
    else:
        statement = statement.order_by(sort_column.asc(), Task.id.asc())
    return statement.limit(query.limit + 1)


def _filters(query: ListQuery) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if len(query.priorities) == 1:
        filters.append(Task.priority == query.priorities[0])
    elif query.priorities:
        filters.append(Task.priority.in_(query.priorities))
    if query.completed is not None:
        filters.append(Task.completed == query.completed)
    if query.q:
        # autoescape: `%`, `_` and the escape character in q match themselves.
        filters.append(Task.title.icontains(query.q, autoescape=True))
    if query.created_after is not None:
        filters.append(Task.created_at > query.created_after)
    if query.created_before is not None:
        filters.append(Task.created_at < query.created_before)
    return filters


def _after(
    query: ListQuery, sort_column: ColumnElement[Any], position: Position
) -> ColumnElement[bool]:
    value = (
        literal(position.value, priority_type)
        if query.sort.by_priority
        else literal(position.value, Task.created_at.type)
    )
    row = tuple_(sort_column, Task.id)
    bound = tuple_(value, literal(position.id, Task.id.type))
    return row < bound if query.sort.descending else row > bound
