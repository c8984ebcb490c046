"""The migrate initContainer: both images at once against one empty PostgreSQL, as pods start."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.container.dockerctl import DOCKER, REPO, RESTRICTED, run_args, run_once

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

SEED = 25


def _head() -> str:
    head = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini"))).get_current_head()
    assert head is not None
    return head


def _state(database_url: str) -> tuple[list[str], int]:
    with psycopg.connect(database_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
        count = conn.execute("SELECT count(*) FROM tasks").fetchone()
    assert count is not None
    return versions, int(count[0])


def test_migrate_from_both_images_at_once(
    api_images: dict[str, str], empty_database_url: str
) -> None:
    env = {"DATABASE_URL": empty_database_url, "SEED_DEMO_TASKS": str(SEED)}
    runs = [
        subprocess.Popen(
            [DOCKER, *run_args(image, (), RESTRICTED, env, "taskflow-migrate", detach=False)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        for image in api_images.values()
    ]
    outputs = [run.communicate(timeout=180) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]

    # Upgraded once to this repo's head, seeded exactly once despite two concurrent runs.
    assert _state(empty_database_url) == ([_head()], SEED)

    # A later pod start (any image) is a no-op.
    again = run_once(api_images["stats-api"], env=env, entrypoint="taskflow-migrate")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _state(empty_database_url) == ([_head()], SEED)


def test_migrate_bad_configuration_names_the_variable(api_images: dict[str, str]) -> None:
    result = run_once(
        api_images["tasks-api"],
        env={"DATABASE_URL": "mysql://nobody@127.0.0.1/none"},
        entrypoint="taskflow-migrate",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "DATABASE_URL" in result.stderr
