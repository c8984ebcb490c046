"""Fixtures of the end-to-end tests: `make up` for one test, or shared by a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.make_up import MakeUp, running_make_up


@pytest.fixture
def make_up() -> Iterator[MakeUp]:
    with running_make_up() as stack:
        yield stack


@pytest.fixture(scope="module")
def shared_make_up() -> Iterator[MakeUp]:
    with running_make_up() as stack:
        yield stack
