"""tasks, per-bucket counts, cache generation, seed marker, and the triggers that keep them exact

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Triggers on tasks:
- tasks_touch (BEFORE UPDATE, row): every UPDATE of a row sets updated_at = now() and
  version = old version + 1, whether or not a column value changed (the ETag follows version).
- tasks_after_insert / _update / _delete (AFTER, statement, with transition tables): add each
  (priority, completed) bucket's net change to task_counts, one UPDATE per changed bucket in
  ascending (priority, completed) order so concurrent writers lock count rows in one order and
  never deadlock; a bucket whose net change is 0 is not touched. Then, if the statement changed
  any row, bump cache_generation.value by 1 (always after the buckets: one lock order).
  Statement level rather than row level so a bulk statement costs one UPDATE per bucket and
  takes its locks in sorted order, not in row order.
- tasks_after_truncate: zero every bucket and bump the generation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

priority = postgresql.ENUM("low", "medium", "high", name="task_priority", create_type=False)

# One statement per string: asyncpg prepares each statement on its own.
TOUCH = (
    """
CREATE FUNCTION tasks_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_touch()
""",
)

AFTER_WRITE = (
    """
CREATE FUNCTION tasks_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bucket record;
    changed boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR bucket IN
            SELECT priority, completed, count(*) AS delta FROM new_rows
            GROUP BY priority, completed ORDER BY priority, completed
        LOOP
            UPDATE task_counts SET total = total + bucket.delta
            WHERE priority = bucket.priority AND completed = bucket.completed;
        END LOOP;
        changed := FOUND;
    ELSIF TG_OP = 'DELETE' THEN
        FOR bucket IN
            SELECT priority, completed, count(*) AS delta FROM old_rows
            GROUP BY priority, completed ORDER BY priority, completed
        LOOP
            UPDATE task_counts SET total = total - bucket.delta
            WHERE priority = bucket.priority AND completed = bucket.completed;
        END LOOP;
        changed := FOUND;
    ELSE
        FOR bucket IN
            SELECT priority, completed, sum(delta) AS delta FROM (
                SELECT priority, completed, 1 AS delta FROM new_rows
                UNION ALL
                SELECT priority, completed, -1 AS delta FROM old_rows
            ) AS moved
            GROUP BY priority, completed HAVING sum(delta) <> 0
            ORDER BY priority, completed
        LOOP
            UPDATE task_counts SET total = total + bucket.delta
            WHERE priority = bucket.priority AND completed = bucket.completed;
        END LOOP;
        changed := EXISTS (SELECT FROM new_rows);
    END IF;
    IF changed THEN
        UPDATE cache_generation SET value = value + 1 WHERE id = 1;
    END IF;
    RETURN NULL;
END
$$
""",
    """
CREATE TRIGGER tasks_after_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_after_write()
""",
    """
CREATE TRIGGER tasks_after_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_after_write()
""",
    """
CREATE TRIGGER tasks_after_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_after_write()
""",
)

AFTER_TRUNCATE = (
    """
CREATE FUNCTION tasks_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TRUNCATE holds ACCESS EXCLUSIVE on tasks: no writer of tasks runs concurrently.
    UPDATE task_counts SET total = 0 WHERE total <> 0;
    UPDATE cache_generation SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END
$$
""",
    """
CREATE TRIGGER tasks_after_truncate AFTER TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_after_truncate()
""",
)


def upgrade() -> None:
    op.execute("CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high')")
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("completed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("priority", priority, server_default="medium", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("char_length(title) >= 1", name=op.f("ck_tasks_title_not_empty")),
        sa.CheckConstraint(
            "description IS NULL OR char_length(description) <= 10000",
            name=op.f("ck_tasks_description_length"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_created_at_id", "tasks", ["created_at", "id"])
    op.create_index("ix_tasks_priority_created_at_id", "tasks", ["priority", "created_at", "id"])
    op.create_index("ix_tasks_completed_created_at_id", "tasks", ["completed", "created_at", "id"])
    op.create_index(
        "ix_tasks_priority_completed_created_at_id",
        "tasks",
        ["priority", "completed", "created_at", "id"],
    )
    op.create_index("ix_tasks_priority_id", "tasks", ["priority", "id"])

    op.create_table(
        "task_counts",
        sa.Column("priority", priority, nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("priority", "completed", name=op.f("pk_task_counts")),
    )
    op.execute(
        "INSERT INTO task_counts (priority, completed, total) "
        "SELECT p, c, 0 FROM unnest(enum_range(NULL::task_priority)) AS p, "
        "(VALUES (false), (true)) AS b(c)"
    )

    op.create_table(
        "cache_generation",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_cache_generation_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_generation")),
    )
    op.execute("INSERT INTO cache_generation (id, value) VALUES (1, 0)")

    op.create_table(
        "seed_marker",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column(
            "seeded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_seed_marker")),
    )

    for statement in (*TOUCH, *AFTER_WRITE, *AFTER_TRUNCATE):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("seed_marker")
    op.drop_table("cache_generation")
    op.drop_table("task_counts")
    op.drop_table("tasks")  # drops its triggers too
    op.execute("DROP FUNCTION tasks_after_truncate()")
    op.execute("DROP FUNCTION tasks_after_write()")
    op.execute("DROP FUNCTION tasks_touch()")
    op.execute("DROP TYPE task_priority")
