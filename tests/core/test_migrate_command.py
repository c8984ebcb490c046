"""`taskflow-migrate` as the initContainers run it: real processes against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from taskflow_core.schema_version import head_revision, script_directory

from devstack.servers import free_port

REPO = Path(__file__).resolve().parents[2]
MIGRATE = str(Path(sys.executable).parent / "taskflow-migrate")
SEED = 500


def migrate_env(database_url: str | None, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], **extra}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def run_migrate(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # cwd is not the repo: the command finds alembic.ini through its own package.
    command = [MIGRATE, *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


def events(output: str) -> list[str]:
    return [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]


def scalar(database_url: str, sql: str) -> object:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_eight_migrate_processes_and_one_alembic_at_once_migrate_once_and_seed_once(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = migrate_env(empty_database_url, SEED_DEMO_TASKS=str(SEED))
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    popen = {"cwd": tmp_path, "env": env, **pipes}
    processes = [subprocess.Popen([MIGRATE], **popen) for _ in range(8)]  # type: ignore[call-overload]
    processes.append(
        subprocess.Popen(  # type: ignore[call-overload]
            [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "upgrade", "head"],
            **popen,
        )
    )
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        outputs.append((process.returncode, stdout + stderr))
    assert [code for code, _ in outputs] == [0] * 9, outputs
    logs = "".join(output for _, output in outputs)
    # One process ran every revision's DDL; the others found head.
    assert sum("Running upgrade" in output for _, output in outputs) == 1
    assert logs.count("Running upgrade") == len(list(script_directory().walk_revisions()))
    assert "demo tasks seeded" in logs
    assert sum(events(output).count("demo tasks seeded") for _, output in outputs) == 1

    with psycopg.connect(empty_database_url) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert versions == [(head_revision(),)]
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (SEED,)
        assert conn.execute("SELECT name, rows FROM seed_marker").fetchall() == [
            ("demo_tasks", SEED)
        ]
        assert conn.execute("SELECT sum(total) FROM task_counts").fetchone() == (SEED,)
        conn.execute("DELETE FROM tasks")
        conn.commit()

    again = run_migrate(env, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "demo tasks were seeded before; not seeding again" in events(again.stdout)
    assert scalar(empty_database_url, "SELECT count(*) FROM tasks") == 0


def test_demo_tasks_follow_the_lab_mix(empty_database_url: str, tmp_path: Path) -> None:
    result = run_migrate(migrate_env(empty_database_url, SEED_DEMO_TASKS="1000"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(empty_database_url) as conn:
        share: dict[str, float] = dict(
            conn.execute(
                "SELECT priority::text, count(*)::float / 1000 FROM tasks GROUP BY priority"
            ).fetchall()
        )
        completed = scalar(empty_database_url, "SELECT avg(completed::int)::float FROM tasks")
        spread = conn.execute(
            "SELECT extract(epoch FROM max(created_at) - min(created_at)) / 86400, "
            "count(DISTINCT created_at), min(char_length(title)), bool_and(created_at < now()) "
            "FROM tasks"
        ).fetchone()
        counted = conn.execute(
            "SELECT priority, completed, count(*) FROM tasks GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        kept = conn.execute(
            "SELECT priority, completed, total FROM task_counts WHERE total > 0 ORDER BY 1, 2"
        ).fetchall()
    assert share == pytest.approx({"low": 0.2, "medium": 0.5, "high": 0.3}, abs=0.03)
    assert completed == pytest.approx(0.3, abs=0.03)
    assert spread is not None
    days, distinct, shortest_title, all_past = spread
    assert days > 20  # spread over the past weeks, so sorting by created_at means something
    assert distinct == 1000
    assert shortest_title > 0
    assert all_past is True
    assert kept == counted


def test_a_database_ahead_of_this_image_is_left_alone(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = run_migrate(migrate_env(database_url, SEED_DEMO_TASKS="10"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database schema is ahead of this image; left as is" in events(result.stdout)
    assert '"revision": "9999"' in result.stdout
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == "9999"
    assert scalar(database_url, "SELECT count(*) FROM tasks") == 0  # no seeding either


def test_at_head_it_only_seeds(database_url: str, tmp_path: Path) -> None:
    result = run_migrate(migrate_env(database_url, SEED_DEMO_TASKS="25"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Running upgrade" not in result.stdout
    assert events(result.stdout)[-2:] == ["schema at head", "demo tasks seeded"]
    assert scalar(database_url, "SELECT count(*) FROM tasks") == 25


@pytest.mark.usefixtures("held_migration_lock")
def test_a_held_lock_fails_after_the_bounded_wait_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    result = run_migrate(migrate_env(database_url), tmp_path, "--lock-timeout", "1s", timeout=60)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    error = json.loads(lines[0])
    assert error["event"] == "migration failed"
    assert "timed out after 1s waiting for the migration lock" in error["error"]
    assert result.stderr == ""


def test_an_unreachable_database_fails_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    result = run_migrate(migrate_env(url), tmp_path, timeout=60)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert "cannot connect to postgresql+asyncpg://postgres@127.0.0.1" in lines[0]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db/x", "SEED_DEMO_TASKS": "many"}, "SEED_DEMO_TASKS"),
        ({"DATABASE_URL": "postgresql://db/x", "SEED_DEMO_TASKS": "-1"}, "SEED_DEMO_TASKS"),
    ],
)
def test_bad_configuration_exits_2_naming_the_variable(
    extra: dict[str, str], variable: str, tmp_path: Path
) -> None:
    result = run_migrate(migrate_env(None, **extra), tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"taskflow-migrate: configuration error: {variable}")
