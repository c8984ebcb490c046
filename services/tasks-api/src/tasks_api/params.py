"""Path and query parameters held to the contract where Litestar is more lenient: one meaning
per input (docs/api.md, "One meaning per input")."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from litestar import Request
from taskflow_core.problems import NotFound, ValidationFailed

from tasks_api.cursor import representable_in_utc

# Query parameters that take one value; given twice they are ambiguous, hence refused.
SINGLE_VALUED = ("completed", "q", "created_after", "created_before", "sort", "limit", "cursor")
# RFC 3339 date-time: a full date, `T`, a full time and an offset (`Z` or ±hh:mm), nothing else.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
# A task id as it is written in a path: ASCII decimal digits without a leading zero.
CANONICAL_ID = re.compile(r"[1-9][0-9]*")


def canonical_id(request: Request[Any, Any, Any], task_id: int) -> int:
    """`task_id` if the path wrote it canonically; `/tasks/0005` or `/tasks/1_0` name nothing."""
    written = request.scope["path"].rsplit("/", 1)[-1]
    if not CANONICAL_ID.fullmatch(written) or written != str(task_id):
        raise NotFound(f"No task has the id {written!r}; ids are decimal numbers like 42.")
    return task_id


def single_values(request: Request[Any, Any, Any]) -> None:
    for name in SINGLE_VALUED:
        if len(request.query_params.getall(name, [])) > 1:
            raise ValidationFailed(name, "must be given at most once")


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


def rfc3339(request: Request[Any, Any, Any], name: str, moment: datetime | None) -> datetime | None:
    """`moment` if it was written as RFC 3339 with an offset (Litestar also takes Unix times)."""
    if moment is None:
        return None
    written = request.query_params.get(name, "")
    if not RFC3339.fullmatch(written) or moment.tzinfo is None:
        raise ValidationFailed(
            name, "must be an RFC 3339 timestamp with an offset, e.g. 2026-01-31T09:00:00Z"
        )
    if not representable_in_utc(moment):
        raise ValidationFailed(name, "the instant must fall within years 1..9999 in UTC")
    return moment
