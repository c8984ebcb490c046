"""Fixtures of the tasks-api tests: the app in-process on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.apiserver import in_process


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with in_process(database_url) as test_client:
        yield test_client
