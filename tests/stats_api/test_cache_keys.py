"""The /stats cache key carries the body's format, derived from the Stats struct's fields."""

from __future__ import annotations

from typing import Any

import msgspec
from stats_api.schemas import PriorityStats, Stats
from stats_api.service import STATS_CACHE_KEY
from taskflow_core.cache import body_format

FIELDS: list[Any] = [
    ("total", int),
    ("completed", int),
    ("pending", int),
    ("completion_rate", float),
    ("by_priority", PriorityStats),
]


def stats_struct(fields: list[Any]) -> type[msgspec.Struct]:
    return msgspec.defstruct("Stats", fields, frozen=True)


def test_the_key_is_the_format_of_the_stats_body() -> None:
    assert f"stats:{body_format(Stats)}" == STATS_CACHE_KEY
    assert body_format(stats_struct(FIELDS)) == body_format(Stats)
    assert body_format(stats_struct([*FIELDS, ("overdue", int)])) != body_format(Stats)
    assert body_format(stats_struct([*FIELDS[:3], ("completion_rate", str), FIELDS[4]])) != (
        body_format(Stats)
    )
