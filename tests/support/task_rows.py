"""Task rows written and counted with plain SQL: the ground truth the APIs are checked against."""

from __future__ import annotations

from typing import Any

import psycopg


def execute(database_url: str, *statements: str, rollback: bool = False) -> None:
    """Run statements in one transaction, then commit (or roll back)."""
    with psycopg.connect(database_url) as conn:
        for statement in statements:
            conn.execute(statement)
        if rollback:
            conn.rollback()


def insert(priority: str, completed: bool, count: int = 1) -> str:
    return (
        "INSERT INTO tasks (title, priority, completed) "
        f"SELECT 'task ' || n, '{priority}', {str(completed).lower()} "
        f"FROM generate_series(1, {count}) AS n"
    )


def counted_stats(database_url: str) -> dict[str, Any]:
    """The figures from a fresh count(*) over tasks — the ground truth."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT priority::text, count(*), count(*) FILTER (WHERE completed) "
            "FROM tasks GROUP BY priority"
        ).fetchall()
    by_priority = {p: {"total": 0, "completed": 0} for p in ("low", "medium", "high")}
    for priority, total, completed in rows:
        by_priority[priority] = {"total": total, "completed": completed}
    total = sum(b["total"] for b in by_priority.values())
    completed = sum(b["completed"] for b in by_priority.values())
    return {
        "total": total,
        "completed": completed,
        "pending": total - completed,
        "completion_rate": completed / total if total else 0,
        "by_priority": by_priority,
    }
