"""The keyset cursor codec: round trips per sort; every malformed cursor is a 400 on `cursor`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from taskflow_core.models import Priority
from taskflow_core.problems import ValidationFailed
from tasks_api.cursor import decode_cursor, encode_cursor
from tasks_api.queries import Position, Sort


@pytest.mark.parametrize("sort", [Sort.CREATED_AT, Sort.CREATED_AT_DESC])
def test_timestamp_positions_round_trip_to_the_microsecond(sort: Sort) -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    position = Position(moment, 42)
    token = encode_cursor(sort, position)
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token
    assert decode_cursor(token, sort) == position


def test_offsets_other_than_utc_keep_the_instant() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-7)))
    decoded = decode_cursor(encode_cursor(Sort.CREATED_AT, Position(moment, 1)), Sort.CREATED_AT)
    assert decoded.value == moment


@pytest.mark.parametrize("sort", [Sort.PRIORITY, Sort.PRIORITY_DESC])
@pytest.mark.parametrize("priority", list(Priority))
def test_priority_positions_round_trip(sort: Sort, priority: Priority) -> None:
    position = Position(priority, 7)
    assert decode_cursor(encode_cursor(sort, position), sort) == position


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [
        (Sort.CREATED_AT, Sort.CREATED_AT_DESC),
        (Sort.CREATED_AT_DESC, Sort.PRIORITY),
        (Sort.PRIORITY, Sort.PRIORITY_DESC),
        (Sort.PRIORITY_DESC, Sort.CREATED_AT),
    ],
)
def test_a_cursor_is_only_valid_for_its_own_sort(made_for: Sort, used_with: Sort) -> None:
    value = Priority.LOW if made_for.by_priority else datetime(2025, 1, 1, tzinfo=UTC)
    token = encode_cursor(made_for, Position(value, 1))
    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(token, used_with)
    assert raised.value.errors is not None
    assert [error.field for error in raised.value.errors] == ["cursor"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!!",
        "a",
        _b64(b"null"),
        _b64(b'{"s": "-created_at", "k": ["2025-01-01T00:00:00+00:00", 1.5]}'),
        _b64(b'{"s": "-created_at", "k": ["2025-01-01T00:00:00+00:00", true]}'),
        _b64(b'{"s": "-created_at", "k": ["2025-01-01T00:00:00+00:00", -3]}'),
        _b64(b'{"s": "-created_at", "k": ["2025-01-01T00:00:00+00:00", 1, 2]}'),
        _b64(b'{"s": "-created_at", "k": [20250101, 1]}'),
        _b64(b'{"s": "-priority", "k": ["HIGH", 1]}'),
        _b64(b'{"s": "-created_at", "k": ["2025-01-01T00:00:00+00:00", 1]}') + "====",
        "x" * 1000,
    ],
)
def test_malformed_cursors_are_rejected(token: str) -> None:
    sort = Sort.PRIORITY_DESC if "priority" in base64_text(token) else Sort.CREATED_AT_DESC
    with pytest.raises(ValidationFailed):
        decode_cursor(token, sort)


def base64_text(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode(errors="replace")
    except ValueError:
        return ""
