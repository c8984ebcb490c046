"""Request bodies: JSON only (else 415), decoded strictly, errors naming the offending field."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from taskflow_core.problems import (
    FieldError,
    InvalidRequest,
    UnsupportedMediaType,
    field_errors_from_messages,
)

from tasks_api.schemas import READ_ONLY_FIELDS, title_problem

BeforeRequest = Callable[[Request[Any, Any, Any]], Awaitable[None]]
# What a 413 still reads and throws away, so the connection closes without unread data (which
# would reset it and could lose the 413 itself); a larger body is cut off as before.
DISCARD_BYTES = 1024 * 1024
DISCARD_SECONDS = 2.0


def is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def json_body(struct: type[msgspec.Struct]) -> BeforeRequest:
    """A before_request hook: checks media type and shape before Litestar binds `data`."""
    decoder = msgspec.json.Decoder(struct, strict=True)
    fields = frozenset(struct.__struct_fields__)

    async def check(request: Request[Any, Any, Any]) -> None:
        if not is_json_media_type(request.headers.get("content-type", "")):
            raise UnsupportedMediaType("The request body must be application/json.")
        try:
            body = await request.body()  # over 64 KiB: 413 before anything is decoded
        except RequestEntityTooLarge:
            await _discard_rest(request)
            raise
        try:
            document = msgspec.json.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError):  # JSON text must be UTF-8
            raise UnsupportedMediaType("The request body is not valid JSON.") from None
        except RecursionError:
            too_deep = FieldError("body", "nested too deeply")
            raise InvalidRequest(
                "The request body is nested too deeply.", errors=[too_deep]
            ) from None
        if isinstance(document, dict):
            _reject_unknown(document, fields)
            _reject_nul(document)
            _check_title(document)
        try:
            decoder.decode(body)
        except msgspec.ValidationError as exc:
            errors = [_read_only(error) for error in field_errors_from_messages([("", str(exc))])]
            names = ", ".join(error.field for error in errors)
            raise InvalidRequest(f"Invalid value for: {names}.", errors=errors) from None

    return check


async def _discard_rest(request: Request[Any, Any, Any]) -> None:
    discarded = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCARD_SECONDS):
            while discarded <= DISCARD_BYTES:
                message = await request.receive()
                if message["type"] != "http.request":
                    return
                discarded += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def _reject_unknown(document: dict[str, Any], fields: frozenset[str]) -> None:
    """Name every unknown or read-only field at once, not just the first msgspec meets."""
    errors = [
        FieldError(name, f"`{name}` is read-only" if name in READ_ONLY_FIELDS else "unknown field")
        for name in document
        if name not in fields
    ]
    if errors:
        names = ", ".join(error.field for error in errors)
        raise InvalidRequest(f"Fields not accepted: {names}.", errors=errors)


def _reject_nul(document: dict[str, Any]) -> None:
    # PostgreSQL text cannot hold U+0000; say so instead of failing in the database.
    errors = [
        FieldError(name, "must not contain the NUL character (U+0000)")
        for name, value in document.items()
        if isinstance(value, str) and "\x00" in value
    ]
    if errors:
        names = ", ".join(error.field for error in errors)
        raise InvalidRequest(f"Invalid value for: {names}.", errors=errors)


def _check_title(document: dict[str, Any]) -> None:
    title = document.get("title")
    if isinstance(title, str) and (problem := title_problem(title)) is not None:
        raise InvalidRequest(
            f"Invalid value for 'title': {problem}.", errors=[FieldError("title", problem)]
        )


def _read_only(error: FieldError) -> FieldError:
    if error.field in READ_ONLY_FIELDS and "unknown field" in error.message:
        return FieldError(error.field, f"`{error.field}` is read-only")
    return error
