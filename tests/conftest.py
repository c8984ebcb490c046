"""Session-wide real PostgreSQL and Redis on free loopback ports, or TEST_*_URL when given."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.servers import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parent.parent
_names = itertools.count()


class Postgres:
    """Creates databases on the session's PostgreSQL or the one TEST_DATABASE_URL names."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create_database(self, prefix: str, template: str = "template0") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)


def migrate(database_url: str) -> None:
    """Run `alembic upgrade head` exactly as a user would, from the repo root."""
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield Postgres(given)
        return
    server = PostgresServer().start()
    try:
        yield Postgres(server.url())
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, to freeze, stop and restart with persistence on."""
    server = RedisServer(persistence=True).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def migrated_template(postgres: Postgres) -> str:
    url = postgres.create_database("taskflow_template")
    migrate(url)
    return url.rpartition("/")[2]


@pytest.fixture
def empty_database_url(postgres: Postgres) -> str:
    return postgres.create_database("taskflow_empty")


@pytest.fixture
def database_url(postgres: Postgres, migrated_template: str) -> str:
    """A fresh database at head, cloned from a template migrated once per session."""
    return postgres.create_database("taskflow_test", template=migrated_template)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test is a failure: CI has everything every test needs."""
    if os.environ.get("CI", "").lower() != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        reporter.write_line(f"CI=true: {len(skipped)} skipped test(s) count as failures", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
