"""The SQL of tasks-api: the keyset list query and the single-task statements.

`list_statement(ListQuery(...))` selects one page plus one row (its presence means a next page)
for the filters, the sort (ties broken by id in the sort's direction) and the position after
which the page starts. The indexes in taskflow_core.models bound the rows it reads for the
default sort with no filter, one priority, `completed`, or one priority + `completed`
(tests/tasks_api/test_indexes.py EXPLAINs exactly these statements).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.dml import ReturningDelete, ReturningInsert, ReturningUpdate
from taskflow_core.models import Priority, Task, priority_type

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


class Sort(enum.StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def by_priority(self) -> bool:
        return self.value.endswith("priority")


DEFAULT_SORT = Sort.CREATED_AT_DESC


@dataclass(frozen=True, slots=True)
class Position:
    """The last row of a page: its sort value and id."""

    value: datetime | Priority
    id: int


@dataclass(frozen=True, slots=True)
class ListQuery:
    priorities: tuple[Priority, ...] = ()
    completed: bool | None = None
    q: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    sort: Sort = DEFAULT_SORT
    limit: int = 50
    position: Position | None = None


TaskSelect = Select[int, str, str | None, bool, Priority, datetime, datetime, int]


def list_statement(query: ListQuery) -> TaskSelect:
    """SELECT of one page plus one row (its presence means there is a next page)."""
    sort_column: QueryableAttribute[Any] = (
        Task.priority if query.sort.by_priority else Task.created_at
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
    # Priorities are written into the SQL text (three values, no injection possible): a cached
    # generic plan then still knows which priority it filters on and keeps using the index
    # that leads with it, instead of filtering a neighbouring index row by row for a rare value.
    priorities = [literal(p, priority_type, literal_execute=True) for p in query.priorities]
    if len(priorities) == 1:
        filters.append(Task.priority == priorities[0])
    elif priorities:
        filters.append(Task.priority.in_(priorities))
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
    query: ListQuery, sort_column: QueryableAttribute[Any], position: Position
) -> ColumnElement[bool]:
    value = (
        literal(position.value, priority_type)
        if query.sort.by_priority
        else literal(position.value, Task.created_at.type)
    )
    row = tuple_(sort_column, Task.id)
    bound = tuple_(value, literal(position.id, Task.id.type))
    return row < bound if query.sort.descending else row > bound


def select_task(task_id: int, versions: frozenset[int] | None = None) -> TaskSelect:
    """One task by id; with `versions`, only while it still has one of them."""
    return select(*TASK_COLUMNS).where(Task.id == task_id, *_version_filter(versions))


def insert_task(values: dict[str, Any]) -> ReturningInsert[*tuple[Any, ...]]:
    return insert(Task).values(**values).returning(*TASK_COLUMNS)


def update_task(
    task_id: int, changes: dict[str, Any], versions: frozenset[int] | None
) -> ReturningUpdate[*tuple[Any, ...]]:
    """UPDATE ... RETURNING of one task, conditional on `versions` (None: unconditional).

    Only a row that `changes` would really change is updated: a no-op PATCH returns no row and
    leaves version, ETag and updated_at as they were.
    """
    differs = or_(*(getattr(Task, name).is_distinct_from(value) for name, value in changes.items()))
    condition = [Task.id == task_id, *_version_filter(versions), differs]
    return update(Task).values(**changes).where(*condition).returning(*TASK_COLUMNS)


def delete_task(task_id: int, versions: frozenset[int] | None) -> ReturningDelete[*tuple[Any, ...]]:
    condition = [Task.id == task_id, *_version_filter(versions)]
    return delete(Task).where(*condition).returning(Task.id)


def task_exists(task_id: int) -> Select[int]:
    return select(Task.id).where(Task.id == task_id)


def _version_filter(versions: frozenset[int] | None) -> list[ColumnElement[bool]]:
    return [] if versions is None else [Task.version.in_(sorted(versions))]
