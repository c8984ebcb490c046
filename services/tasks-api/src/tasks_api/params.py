"""Query parameters of `GET /tasks` held to the contract where Litestar is more lenient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request
from taskflow_core.problems import ValidationFailed

from tasks_api import cursor


def strict_bool(request: Request[Any, Any, Any], value: bool | None) -> bool | None:
    # Litestar accepts 1/0/yes/no too; the contract says exactly `true` or `false`.
    raw = request.query_params.get("completed")
    if raw is not None and raw not in {"true", "false"}:
        raise ValidationFailed("completed", "must be `true` or `false`")
    return value


def strict_limit(request: Request[Any, Any, Any], value: int) -> int:
    # Litestar also takes `1.0`; the contract's limit is a plain integer.
    if not all(raw.isascii() and raw.isdigit() for raw in request.query_params.getall("limit", [])):
        raise ValidationFailed("limit", "must be an integer from 1 to 100")
    return value


def search_text(q: str | None) -> str | None:
    if q is not None and "\x00" in q:
        raise ValidationFailed("q", "must not contain NUL characters")
    return q or None


def aware(name: str, moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValidationFailed(name, "an RFC 3339 timestamp needs a UTC offset (e.g. `Z`)")
    if not cursor.representable_in_utc(moment):
        raise ValidationFailed(name, "the instant must fall within years 1..9999 in UTC")
    return moment
