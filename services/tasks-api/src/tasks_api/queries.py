"""The SQL of tasks-api: the keyset list query and the single-task statements, as asyncpg runs
them (positional `$n` parameters, each distinct text a prepared statement per connection).

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
from typing import Any, NamedTuple

from taskflow_core.models import Priority

TASK_COLUMNS = "id, title, description, completed, priority, created_at, updated_at, version"
LIKE_ESCAPE = "/"


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


class Statement(NamedTuple):
    """SQL text with `$n` placeholders and its parameters, in order."""

    sql: str
    params: tuple[Any, ...] = ()


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def list_statement(query: ListQuery) -> Statement:
    """SELECT of one page plus one row (its presence means there is a next page)."""
    bind = _Params()
    filters = _filters(query, bind)
    sort_column = "priority" if query.sort.by_priority else "created_at"
    if query.position is not None:
        value = query.position.value
        if isinstance(value, Priority):
            bound = bind(value.value, "::task_priority")
        else:
            bound = bind(value, "::timestamptz")
        operator = "<" if query.sort.descending else ">"
        filters.append(
            f"({sort_column}, id) {operator} ({bound}, {bind(query.position.id, '::bigint')})"
        )
    direction = "DESC" if query.sort.descending else "ASC"
    where = f" WHERE {' AND '.join(filters)}" if filters else ""
    sql = (
        f"SELECT {TASK_COLUMNS} FROM tasks{where} "
        f"ORDER BY {sort_column} {direction}, id {direction} LIMIT {bind(query.limit + 1, '::int')}"
    )
    return Statement(sql, tuple(bind.values))


def _filters(query: ListQuery, bind: _Params) -> list[str]:
    filters: list[str] = []
    # Priorities are written into the SQL text (enum values, no injection possible): a cached
    # generic plan then still knows which priority it filters on and keeps using the index
    # that leads with it, instead of filtering a neighbouring index row by row for a rare value.
    priorities = [f"'{Priority(p).value}'" for p in query.priorities]
    if len(priorities) == 1:
        filters.append(f"priority = {priorities[0]}")
    elif priorities:
        filters.append(f"priority IN ({', '.join(priorities)})")
    if query.completed is not None:
        filters.append(f"completed = {'true' if query.completed else 'false'}")
    if query.q:
        pattern = bind(_like_escaped(query.q), "::text")
        filters.append(f"title ILIKE '%' || {pattern} || '%' ESCAPE '/'")
    if query.created_after is not None:
        filters.append(f"created_at > {bind(query.created_after, '::timestamptz')}")
    if query.created_before is not None:
        filters.append(f"created_at < {bind(query.created_before, '::timestamptz')}")
    return filters


def _like_escaped(text: str) -> str:
    """`%`, `_` and the escape character match themselves."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def select_task(task_id: int, versions: frozenset[int] | None = None) -> Statement:
    """One task by id; with `versions`, only while it still has one of them."""
    condition, params = _by_id(task_id, versions)
    return Statement(f"SELECT {TASK_COLUMNS} FROM tasks WHERE {condition}", params)


INSERT_TASK = (
    "INSERT INTO tasks (title, description, completed, priority) "
    f"VALUES ($1, $2, $3, $4::task_priority) RETURNING {TASK_COLUMNS}"
)


def insert_task(title: str, description: str | None, completed: bool, priority: str) -> Statement:
    return Statement(INSERT_TASK, (title, description, completed, priority))


# Columns a PATCH may set, with the cast their parameter needs.
UPDATABLE = {"title": "", "description": "", "completed": "", "priority": "::task_priority"}


def update_task(
    task_id: int, changes: dict[str, Any], versions: frozenset[int] | None
) -> Statement:
    """UPDATE ... RETURNING of one task, conditional on `versions` (None: unconditional).

    Only a row that `changes` would really change is updated: a no-op PATCH returns no row and
    leaves version, ETag and updated_at as they were.
    """
    bind = _Params()
    placeholders = {
        column: bind(_plain(changes[column]), cast)
        for column, cast in UPDATABLE.items()
        if column in changes
    }
    assignments = ", ".join(f"{column} = {value}" for column, value in placeholders.items())
    differs = " OR ".join(f"{c} IS DISTINCT FROM {v}" for c, v in placeholders.items())
    condition, params = _by_id(task_id, versions, start=len(bind.values))
    sql = (
        f"UPDATE tasks SET {assignments} WHERE {condition} AND ({differs}) RETURNING {TASK_COLUMNS}"
    )
    return Statement(sql, (*bind.values, *params))


def delete_task(task_id: int, versions: frozenset[int] | None) -> Statement:
    condition, params = _by_id(task_id, versions)
    return Statement(f"DELETE FROM tasks WHERE {condition} RETURNING id", params)


def task_exists(task_id: int) -> Statement:
    return Statement("SELECT id FROM tasks WHERE id = $1", (task_id,))


def _by_id(
    task_id: int, versions: frozenset[int] | None, start: int = 0
) -> tuple[str, tuple[Any, ...]]:
    if versions is None:
        return f"id = ${start + 1}", (task_id,)
    return f"id = ${start + 1} AND version = ANY(${start + 2}::int[])", (task_id, sorted(versions))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Priority) else value
