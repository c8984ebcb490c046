"""Migrations under faults, with a real next release written as a test fixture: a migrate command
killed mid-upgrade leaves the previous head and the next run completes; so does a failover of the
primary mid-upgrade (a streaming standby promoted behind a stand-in for the -rw Service); an image
one revision behind a database its successor expanded keeps starting and serving."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from taskflow_core.schema_version import head_revision

from devstack.databases import migrate
from tests.core.test_migrate_command import MIGRATE, migrate_env, scalar
from tests.support.apiserver import api_server, service_env
from tests.support.replication import replicated_postgres
from tests.support.tcp_forwarder import TcpForwarder

REPO = Path(__file__).resolve().parents[2]

# The next release's expand step: a nullable column and an index, nothing the current image's
# queries or inserts depend on. It sleeps first when asked, so a test can kill it mid-upgrade.
NEXT_REVISION = '''"""Expand: tasks.due_at (nullable) and its index.

Revision ID: {revision}
Revises: {previous}
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{previous}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tasks_due_at", "tasks", ["due_at"])
    pause = float(os.environ.get("NEXT_RELEASE_PAUSE", "0"))
    if pause:
        op.execute(sa.text(f"SELECT pg_sleep({{pause}})"))


def downgrade() -> None:
    op.drop_index("ix_tasks_due_at", table_name="tasks")
    op.drop_column("tasks", "due_at")
'''


@pytest.fixture
def next_release(tmp_path: Path) -> Path:
    """alembic.ini of this repository's migrations plus one more revision; returns the ini."""
    root = tmp_path / "next-release"
    shutil.copytree(
        REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "alembic.ini", root / "alembic.ini")
    current = head_revision()
    following = f"{int(current) + 1:04d}"
    (root / "alembic" / "versions" / f"{following}_expand_due_at.py").write_text(
        NEXT_REVISION.format(revision=following, previous=current)
    )
    return root / "alembic.ini"


def next_head() -> str:
    return f"{int(head_revision()) + 1:04d}"


def column_exists(database_url: str) -> bool:
    return bool(
        scalar(
            database_url,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'tasks' AND column_name = 'due_at'",
        )
    )


def wait_for_pause(database_url: str, timeout: float = 60) -> None:
    """Until the upgrade sits in its pause, inside its transaction."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise TimeoutError("the upgrade never reached its pause")


@pytest.fixture
def migrating(
    database_url: str, next_release: Path, tmp_path: Path
) -> Iterator[subprocess.Popen[str]]:
    env = migrate_env(database_url, ALEMBIC_CONFIG=str(next_release), NEXT_RELEASE_PAUSE="60")
    process = subprocess.Popen(
        [MIGRATE],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_sigkill_mid_upgrade_leaves_the_previous_head_and_the_next_run_completes(
    database_url: str, next_release: Path, migrating: subprocess.Popen[str], tmp_path: Path
) -> None:
    wait_for_pause(database_url)
    migrating.send_signal(signal.SIGKILL)
    migrating.wait(10)

    # The transaction died with its connection: no half-applied DDL, the lock is free again.
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == head_revision()
    assert not column_exists(database_url)

    env = migrate_env(database_url, ALEMBIC_CONFIG=str(next_release))
    result = subprocess.run(
        [MIGRATE, "--lock-timeout", "10s"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == next_head()
    assert column_exists(database_url)


def advisory_locks(database_url: str) -> object:
    return scalar(database_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


def test_a_failover_mid_upgrade_loses_lock_and_transaction_and_the_next_run_completes(
    next_release: Path, tmp_path: Path
) -> None:
    with replicated_postgres() as pair:
        primary_url = pair.primary.create_database("taskflow")
        migrate(primary_url)
        service = TcpForwarder(pair.primary.port).start()  # the Cluster's -rw Service
        try:
            url = f"postgresql://postgres@127.0.0.1:{service.port}/taskflow"
            env = migrate_env(url, ALEMBIC_CONFIG=str(next_release), NEXT_RELEASE_PAUSE="60")
            process = subprocess.Popen(
                [MIGRATE], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            try:
                wait_for_pause(primary_url)
                # The session lock lives on the primary only: the standby never sees it.
                assert advisory_locks(primary_url) == 1
                pair.stop_primary()
                pair.standby.promote()
                service.point_at(pair.standby.port)
                output, _ = process.communicate(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=10)
            # The migration's connection died with the primary: it fails (the initContainer
            # restarts), and nothing of its transaction reached the promoted standby.
            assert process.returncode != 0, output
            promoted = pair.standby.url("taskflow")
            assert scalar(promoted, "SELECT version_num FROM alembic_version") == head_revision()
            assert not column_exists(promoted)
            assert advisory_locks(promoted) == 0

            # The next attempt (the restarted initContainer) takes the lock and completes.
            result = subprocess.run(
                [MIGRATE, "--lock-timeout", "10s"], cwd=tmp_path,
                env=migrate_env(url, ALEMBIC_CONFIG=str(next_release)),
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            assert scalar(promoted, "SELECT version_num FROM alembic_version") == next_head()
            assert column_exists(promoted)
            assert advisory_locks(promoted) == 0
        finally:
            service.close()


def test_an_image_one_revision_behind_keeps_starting_and_serving(
    database_url: str, next_release: Path, tmp_path: Path
) -> None:
    # The next release migrated the database (expand)...
    upgraded = subprocess.run(
        [MIGRATE],
        cwd=tmp_path,
        env=migrate_env(database_url, ALEMBIC_CONFIG=str(next_release)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == next_head()

    # ...and this image's own migrate command leaves it as is and lets its pod start...
    behind = subprocess.run(
        [MIGRATE], cwd=tmp_path, env=migrate_env(database_url), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert behind.returncode == 0, behind.stdout + behind.stderr
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == next_head()

    # ...and its servers are ready and serve reads and writes on the expanded schema.
    for module in ("tasks_api", "stats_api"):
        with api_server(module, service_env(database_url)) as server:
            ready = httpx.get(f"{server.base_url}/ready", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["schema"] == "ahead"
            if module == "tasks_api":
                created = httpx.post(f"{server.base_url}/tasks", json={"title": "t"}, timeout=10)
                assert created.status_code == 201, created.text
                listed = httpx.get(f"{server.base_url}/tasks?limit=1", timeout=10)
                assert listed.json()["items"][0]["title"] == "t"
            else:
                assert httpx.get(f"{server.base_url}/stats", timeout=10).json()["total"] == 1
