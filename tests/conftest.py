"""Session-wide real PostgreSQL and Redis on free loopback ports, or TEST_*_URL when given."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.databases import Postgres, migrate
from devstack.servers import PostgresServer, RedisServer


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
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped:
        reporter.write_line(f"CI=true: {len(skipped)} skipped test(s) count as failures", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
