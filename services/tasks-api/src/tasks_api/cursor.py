"""The opaque keyset cursor: base64url of {"s": sort, "k": [sort value, id]} without padding.

A cursor is only accepted for the sort that produced it and only when its position is
well-formed; anything else is a 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import msgspec
from taskflow_core.models import Priority
from taskflow_core.problems import ValidationFailed

from tasks_api.queries import Position, Sort

MAX_CURSOR_CHARS = 512
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"  # base64url without padding
MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints
_PRIORITIES = frozenset(p.value for p in Priority)


class _Token(msgspec.Struct, forbid_unknown_fields=True):
    s: str
    k: tuple[str, int]


def encode_cursor(sort: Sort, position: Position) -> str:
    value = position.value
    text = value.value if isinstance(value, Priority) else value.isoformat()
    raw = msgspec.json.encode(_Token(s=sort.value, k=(text, position.id)))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, sort: Sort) -> Position:
    token = _token(cursor)
    if token.s != sort.value:
        raise ValidationFailed("cursor", "the cursor belongs to another sort order")
    text, row_id = token.k
    if not 1 <= row_id <= MAX_ID:
        raise ValidationFailed("cursor", "the cursor is not valid")
    if sort.by_priority:
        if text not in _PRIORITIES:
            raise ValidationFailed("cursor", "the cursor is not valid")
        return Position(Priority(text), row_id)
    return Position(_timestamp(text), row_id)


def _token(cursor: str) -> _Token:
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise ValidationFailed("cursor", "the cursor is not valid")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return msgspec.json.decode(raw, type=_Token, strict=True)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValidationFailed("cursor", "the cursor is not valid") from None


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("cursor", "the cursor is not valid") from None
    if moment.tzinfo is None or not representable_in_utc(moment):
        raise ValidationFailed("cursor", "the cursor is not valid")
    return moment


def representable_in_utc(moment: datetime) -> bool:
    """False for instants whose UTC date falls outside years 1..9999 (the database rejects them)."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True
