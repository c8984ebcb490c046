"""Alembic at the repo root against a real PostgreSQL: up, down, up; one numbered head; no drift;
the advisory lock's bounded wait; schema status; the triggers of revision 0001."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from taskflow_core.models import Base
from taskflow_core.schema_version import (
    MIGRATION_LOCK_KEY,
    SchemaStatus,
    head_revision,
    schema_status,
    script_directory,
)

REPO = Path(__file__).resolve().parents[2]
OUR_TABLES = {"tasks", "task_counts", "cache_generation", "seed_marker", "idempotency_keys"}


def alembic(
    database_url: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`alembic ...` as a person runs it from the repo root, with only DATABASE_URL set."""
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def catalog(database_url: str) -> dict[str, set[str]]:
    """Our objects in the public schema: tables, types, functions, triggers."""
    queries = {
        "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        "types": "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE nspname = 'public' AND typtype = 'e'",
        "functions": "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE nspname = 'public'",
        "triggers": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
    }
    with psycopg.connect(database_url) as conn:
        return {
            name: {row[0] for row in conn.execute(sql).fetchall()} for name, sql in queries.items()
        }


def test_upgrade_downgrade_base_and_upgrade_again(empty_database_url: str) -> None:
    first = alembic(empty_database_url, "upgrade", "head")
    assert first.returncode == 0, first.stderr
    migrated = catalog(empty_database_url)
    assert migrated["tables"] == OUR_TABLES | {"alembic_version"}
    assert migrated["types"] == {"task_priority"}
    assert migrated["functions"] == {"tasks_touch", "tasks_after_write", "tasks_after_truncate"}
    assert migrated["triggers"] == {
        "tasks_touch",
        "tasks_after_insert",
        "tasks_after_update",
        "tasks_after_delete",
        "tasks_after_truncate",
    }

    down = alembic(empty_database_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    emptied = catalog(empty_database_url)
    nothing: set[str] = set()
    assert emptied == {
        "tables": {"alembic_version"},
        "types": nothing,
        "functions": nothing,
        "triggers": nothing,
    }

    again = alembic(empty_database_url, "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert catalog(empty_database_url) == migrated
    current = alembic(empty_database_url, "current")
    assert f"{head_revision()} (head)" in current.stdout


def test_upgrade_with_the_database_parts_instead_of_a_url(empty_database_url: str) -> None:
    url = make_url(empty_database_url)
    parts = {
        "DATABASE_HOST": str(url.host),
        "DATABASE_PORT": str(url.port),
        "DATABASE_NAME": str(url.database),
        "DATABASE_USER": str(url.username),
        "DATABASE_PASSWORD": "unused-with-trust-auth",
    }
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], **parts},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "tasks" in catalog(empty_database_url)["tables"]


def test_offline_sql_takes_the_lock_and_creates_the_triggers(empty_database_url: str) -> None:
    result = alembic(empty_database_url, "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert script.index(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})") < script.index(
        "CREATE TABLE tasks"
    )
    assert script.count("CREATE TRIGGER") == 5
    assert script.rstrip().endswith("COMMIT;")
    assert catalog(empty_database_url)["tables"] == set()  # offline touches no database


def test_0002_only_expands(empty_database_url: str) -> None:
    # An image one revision behind keeps serving on 0002's schema: it adds, never changes.
    result = alembic(empty_database_url, "upgrade", "0001:0002", "--sql")
    assert result.returncode == 0, result.stderr
    sql = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("--"))
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    changes = [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "SELECT pg_"))]
    kinds = [" ".join(s.split()[:2]) for s in changes]
    assert kinds == ["CREATE TABLE", "CREATE INDEX", "UPDATE alembic_version"], changes


def test_upgrade_at_head_runs_no_migration(database_url: str) -> None:
    result = alembic(database_url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert "Running upgrade" not in result.stderr


def test_one_head_and_numbered_revisions_in_numbered_files() -> None:
    scripts = script_directory()
    assert scripts.get_heads() == [head_revision()]
    chain = list(reversed(list(scripts.walk_revisions())))
    assert [script.revision for script in chain] == [f"{n:04d}" for n in range(1, len(chain) + 1)]
    for previous, script in zip([None, *chain], chain, strict=False):
        assert script.down_revision == (previous.revision if previous else None)
        assert script.path is not None
        assert re.fullmatch(rf"{script.revision}_[a-z0-9_]+\.py", Path(script.path).name)


def test_autogenerate_finds_no_difference_between_models_and_migrations(
    database_url: str,
) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_gives_up_on_a_held_lock_with_a_clear_message(
    database_url: str, held_migration_lock: psycopg.Connection
) -> None:
    started = time.monotonic()
    result = alembic(database_url, "-x", "lock_timeout=2s", "upgrade", "head", timeout=60)
    took = time.monotonic() - started
    assert result.returncode != 0
    assert took < 30  # the 2 s lock budget, plus interpreter start-up on a busy machine
    message = result.stderr.strip().splitlines()[-1]
    assert "timed out after 2s waiting for the migration lock" in message
    assert f"pg_advisory_lock({MIGRATION_LOCK_KEY})" in message
    assert "alembic -x lock_timeout=300s upgrade head" in message
    assert "Traceback" not in result.stderr


def test_ddl_gives_up_after_the_short_ddl_budget_and_changes_nothing(database_url: str) -> None:
    with psycopg.connect(database_url) as reader:
        reader.execute("SELECT count(*) FROM tasks")  # an open transaction keeps a lock on tasks
        started = time.monotonic()
        result = alembic(database_url, "-x", "ddl_lock_timeout=1s", "downgrade", "base", timeout=60)
        took = time.monotonic() - started
        reader.rollback()
    assert result.returncode != 0
    assert "canceling statement due to lock timeout" in result.stderr
    assert took < 30  # 1 s of waiting, plus interpreter start-up on a busy machine
    # All revisions run in one transaction: the tables dropped before the timeout are back.
    assert catalog(database_url)["tables"] == OUR_TABLES | {"alembic_version"}
    assert f"{head_revision()} (head)" in alembic(database_url, "current").stdout


def test_a_malformed_lock_timeout_is_refused(database_url: str) -> None:
    result = alembic(database_url, "-x", "lock_timeout=soon", "upgrade", "head")
    assert result.returncode != 0
    assert "-x lock_timeout must look like 120s" in result.stderr


def test_upgrade_without_database_settings_names_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


async def _status(url: str) -> SchemaStatus:
    async_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(async_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await schema_status(conn)
    finally:
        await engine.dispose()


async def test_schema_status_empty_at_head_behind_and_ahead(
    empty_database_url: str, database_url: str
) -> None:
    assert await _status(empty_database_url) is SchemaStatus.EMPTY
    assert await _status(database_url) is SchemaStatus.AT_HEAD
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
        assert await _status(database_url) is SchemaStatus.BEHIND
        conn.execute("UPDATE alembic_version SET version_num = 'abc123'")
        assert await _status(database_url) is SchemaStatus.BEHIND
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
        assert await _status(database_url) is SchemaStatus.AHEAD
        conn.execute("DELETE FROM alembic_version")
        assert await _status(database_url) is SchemaStatus.EMPTY


def test_update_bumps_version_and_updated_at(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO tasks (title, created_at, updated_at) "
            "VALUES ('t', now() - interval '1 day', now() - interval '1 day') "
            "RETURNING id, version, updated_at"
        ).fetchone()
        assert row is not None
        task_id, version, updated_at = row
        assert version == 1
        # A client can set neither: the trigger decides both.
        conn.execute(
            "UPDATE tasks SET title = 'u', version = 100, updated_at = '2000-01-01' WHERE id = %s",
            (task_id,),
        )
        conn.execute("UPDATE tasks SET title = 'u' WHERE id = %s", (task_id,))
        after = conn.execute(
            "SELECT version, updated_at, updated_at > now() - interval '1 minute' "
            "FROM tasks WHERE id = %s",
            (task_id,),
        ).fetchone()
    assert after is not None
    assert after[0] == 3  # every UPDATE bumps, even one that changes no value
    assert after[1] > updated_at
    assert after[2] is True


def _generation(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT value FROM cache_generation WHERE id = 1").fetchone()
    assert row is not None
    return int(row[0])


def test_generation_bumps_once_per_writing_statement_and_never_on_rollback(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        start = _generation(conn)
        conn.execute("INSERT INTO tasks (title) SELECT 'bulk ' || i FROM generate_series(1, 10) i")
        assert _generation(conn) == start + 1
        conn.execute("UPDATE tasks SET completed = true WHERE title = 'bulk 1'")
        assert _generation(conn) == start + 2
        conn.execute("UPDATE tasks SET completed = true WHERE title = 'missing'")
        conn.execute("DELETE FROM tasks WHERE title = 'missing'")
        assert _generation(conn) == start + 2  # statements that change no row change nothing
        with conn.transaction(force_rollback=True):
            conn.execute("DELETE FROM tasks WHERE title = 'bulk 2'")
            conn.execute("INSERT INTO tasks (title) VALUES ('rolled back')")
        assert _generation(conn) == start + 2
        conn.execute("DELETE FROM tasks WHERE title = 'bulk 3'")
        assert _generation(conn) == start + 3
        conn.execute("TRUNCATE tasks")
        assert _generation(conn) == start + 4
        counts = conn.execute("SELECT sum(total) FROM task_counts").fetchone()
        assert counts is not None
        assert counts[0] == 0


def test_counts_start_with_six_zero_buckets_and_generation_with_one_row(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        buckets = conn.execute(
            "SELECT priority::text, completed, total FROM task_counts AS c "
            "ORDER BY c.priority, c.completed"
        ).fetchall()
        assert buckets == [
            (priority, completed, 0)
            for priority in ("low", "medium", "high")
            for completed in (False, True)
        ]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO cache_generation (id, value) VALUES (2, 0)")


def test_the_database_applies_task_defaults_and_rejects_out_of_range_values(
    database_url: str,
) -> None:
    """The schema itself holds the contract's limits, whatever client writes the rows."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO tasks (title) VALUES (%s) RETURNING description, completed, "
            "priority::text, version, created_at = updated_at, now() - created_at < '1 minute', "
            "extract(timezone FROM created_at) IS NOT NULL",
            ("x" * 255,),
        ).fetchone()
        assert row == (None, False, "medium", 1, True, True, True)
        conn.execute("INSERT INTO tasks (title, description) VALUES ('t', %s)", ("d" * 10_000,))
        rejected: list[tuple[str, tuple[object, ...], type[psycopg.Error]]] = [
            ("INSERT INTO tasks (title) VALUES (%s)", ("",), psycopg.errors.CheckViolation),
            (
                "INSERT INTO tasks (title) VALUES (%s)",
                ("x" * 256,),
                psycopg.errors.StringDataRightTruncation,
            ),
            (
                "INSERT INTO tasks (title, description) VALUES ('t', %s)",
                ("d" * 10_001,),
                psycopg.errors.CheckViolation,
            ),
            (
                "INSERT INTO tasks (title, priority) VALUES ('t', %s)",
                ("urgent",),
                psycopg.errors.InvalidTextRepresentation,
            ),
            ("INSERT INTO tasks (title) VALUES (NULL)", (), psycopg.errors.NotNullViolation),
            ("INSERT INTO tasks (id, title) VALUES (7, 't')", (), psycopg.errors.GeneratedAlways),
        ]
        for sql, params, error in rejected:
            with pytest.raises(error):
                conn.execute(sql, params)
        count = conn.execute("SELECT count(*) FROM tasks").fetchone()
    assert count == (2,)
