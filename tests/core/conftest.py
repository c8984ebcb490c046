"""Fixtures of the taskflow_core tests."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from taskflow_core.schema_version import MIGRATION_LOCK_KEY


@pytest.fixture
def held_migration_lock(database_url: str) -> Iterator[psycopg.Connection]:
    """Another session holding the migration lock for the whole test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        yield conn
