"""RFC 9457 problem details: the domain errors and the one mapper from any exception to HTTP.

Every error response is `application/problem+json` with a stable `type` URI per kind of error,
a constant `title` per type, `status`, an occurrence-specific `detail` that never carries SQL or
a traceback, and `errors` (a list of {"field", "message"}) for validation failures.
Type URIs are `https://taskflow.dev/problems/<kind>`; any other HTTP error uses `about:blank`
with the status phrase as title, as RFC 9457 §4.2.1 prescribes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
import msgspec
import structlog
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from sqlalchemy import exc as sa_exc

from taskflow_core.http_methods import allow_header

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://taskflow.dev/problems/"
RETRY_AFTER_SECONDS = 1

log = structlog.get_logger("taskflow.problems")


class ProblemKind(Enum):
    """(slug, status, constant title) for every kind of error this project answers with."""

    VALIDATION = ("validation-error", 400, "Request validation failed")
    BAD_REQUEST = ("bad-request", 400, "Malformed request")
    NOT_FOUND = ("not-found", 404, "Resource not found")
    METHOD_NOT_ALLOWED = ("method-not-allowed", 405, "Method not allowed")
    CONFLICT = ("conflict", 409, "Conflicting state")
    PRECONDITION_FAILED = ("precondition-failed", 412, "Precondition failed")
    PAYLOAD_TOO_LARGE = ("payload-too-large", 413, "Request body too large")
    UNSUPPORTED_MEDIA_TYPE = ("unsupported-media-type", 415, "Unsupported media type")
    IDEMPOTENCY_KEY_REUSED = ("idempotency-key-reused", 422, "Idempotency key reused")
    SERVICE_UNAVAILABLE = ("service-unavailable", 503, "Service temporarily unavailable")
    INTERNAL = ("internal-error", 500, "Internal server error")

    def __init__(self, slug: str, status: int, title: str) -> None:
        self.slug = slug
        self.status = status
        self.title = title

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


PROBLEM_TYPES = frozenset(kind.type_uri for kind in ProblemKind)
# The kind an operation's documented status stands for (400: validation, the common case).
_DOC_KIND = {kind.status: kind for kind in reversed(ProblemKind)}
_KIND_BY_STATUS = {
    400: ProblemKind.BAD_REQUEST,
    404: ProblemKind.NOT_FOUND,
    405: ProblemKind.METHOD_NOT_ALLOWED,
    409: ProblemKind.CONFLICT,
    412: ProblemKind.PRECONDITION_FAILED,
    413: ProblemKind.PAYLOAD_TOO_LARGE,
    415: ProblemKind.UNSUPPORTED_MEDIA_TYPE,
    500: ProblemKind.INTERNAL,
    503: ProblemKind.SERVICE_UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class Problem(ProblemDetailsException):
    """A domain error that maps directly to a problem response of its kind."""

    kind: ClassVar[ProblemKind] = ProblemKind.INTERNAL

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        title: str | None = None,
        type_uri: str | None = None,
    ) -> None:
        extra = None
        if errors is not None:
            extra = {"errors": [{"field": e.field, "message": e.message} for e in errors]}
        super().__init__(
            detail=detail,
            status_code=status or self.kind.status,
            headers=headers,
            extra=extra,
            type_=type_uri or self.kind.type_uri,
            title=title or self.kind.title,
        )
        self.errors = errors


class ValidationFailed(Problem):
    kind = ProblemKind.VALIDATION

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"Invalid value for '{field}': {message}", errors=[FieldError(field, message)]
        )


class InvalidRequest(Problem):
    """A validation failure naming several fields at once."""

    kind = ProblemKind.VALIDATION


class BadRequest(Problem):
    kind = ProblemKind.BAD_REQUEST


class NotFound(Problem):
    kind = ProblemKind.NOT_FOUND


class MethodNotAllowed(Problem):
    kind = ProblemKind.METHOD_NOT_ALLOWED


class Conflict(Problem):
    kind = ProblemKind.CONFLICT


class PreconditionFailed(Problem):
    kind = ProblemKind.PRECONDITION_FAILED


class PayloadTooLarge(Problem):
    """Answered before the body was read to its end: the connection cannot carry another
    request, so the response says it closes (RFC 9112 section 9.6)."""

    kind = ProblemKind.PAYLOAD_TOO_LARGE

    def __init__(self, detail: str, **kwargs: Any) -> None:
        headers = {**(kwargs.pop("headers", None) or {}), "Connection": "close"}
        super().__init__(detail, headers=headers, **kwargs)


class UnsupportedMediaType(Problem):
    kind = ProblemKind.UNSUPPORTED_MEDIA_TYPE


class IdempotencyKeyReused(Problem):
    """An Idempotency-Key sent again with another request (draft-ietf-httpapi-idempotency-key)."""

    kind = ProblemKind.IDEMPOTENCY_KEY_REUSED


class ServiceUnavailable(Problem):
    kind = ProblemKind.SERVICE_UNAVAILABLE

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
        )


class InternalError(Problem):
    kind = ProblemKind.INTERNAL


_PROBLEM_BY_KIND: dict[ProblemKind, type[Problem]] = {
    ProblemKind.VALIDATION: InvalidRequest,
    ProblemKind.BAD_REQUEST: BadRequest,
    ProblemKind.NOT_FOUND: NotFound,
    ProblemKind.METHOD_NOT_ALLOWED: MethodNotAllowed,
    ProblemKind.CONFLICT: Conflict,
    ProblemKind.PRECONDITION_FAILED: PreconditionFailed,
    ProblemKind.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ProblemKind.UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaType,
    ProblemKind.IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReused,
    ProblemKind.SERVICE_UNAVAILABLE: ServiceUnavailable,
    ProblemKind.INTERNAL: InternalError,
}


class FieldErrorDoc(msgspec.Struct):
    field: str
    message: str


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """The documented shape of every error body (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorDoc] | None = None


def problem_specs(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses an operation can answer with."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_MEDIA_TYPE,
            description=_DOC_KIND[status].title,
        )
        for status in statuses
    }


def problem_details_plugin() -> ProblemDetailsPlugin:
    """Litestar's RFC 9457 plugin with this project's one mapper from exceptions to problems.

    Our `Problem`s are its `ProblemDetailsException`s; framework HTTP errors, validation errors
    and anything unexpected are converted below (most specific exception class wins).
    """
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                HTTPException: _http_problem,
                ValidationException: _validation_problem,
                Exception: _unexpected_problem,
            }
        )
    )


def _unexpected_problem(exc: Exception) -> Problem:
    if _is_database_unavailable(exc):
        log.warning("database unavailable", error=type(exc).__name__)
        return ServiceUnavailable("The database is busy or unreachable; retry shortly.")
    log.error("unhandled error", exc_info=exc)
    return InternalError("An unexpected error occurred.")


def _http_problem(exc: HTTPException) -> Problem:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if "allow" in headers:  # a 405: name HEAD and OPTIONS too (taskflow_core.http_methods)
        headers["allow"] = allow_header(headers["allow"])
    kind = _KIND_BY_STATUS.get(status)
    if kind is None:
        phrase = _phrase(status)
        return InternalError(
            phrase, status=status, title=phrase, type_uri="about:blank", headers=headers
        )
    if status >= 500:
        # Framework 5xx details may name internals; keep them in the log only.
        log.error("server error", status=status, error=str(exc.detail))
        return _PROBLEM_BY_KIND[kind](_generic_detail(kind), headers=headers)
    return _PROBLEM_BY_KIND[kind](_client_detail(kind, exc), headers=headers)


def _client_detail(kind: ProblemKind, exc: HTTPException) -> str:
    # Litestar's default detail for 404/405 is the status phrase; say something useful instead.
    if kind is ProblemKind.NOT_FOUND:
        return "No resource exists at this path."
    if kind is ProblemKind.METHOD_NOT_ALLOWED:
        return "This method is not allowed on this resource."
    if kind is ProblemKind.PAYLOAD_TOO_LARGE:
        return "The request body exceeds the size limit."
    detail = str(exc.detail)
    return detail if _safe(detail) else _phrase(exc.status_code)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _generic_detail(kind: ProblemKind) -> str:
    if kind is ProblemKind.SERVICE_UNAVAILABLE:
        return "The service is temporarily unable to answer; retry shortly."
    return "An unexpected error occurred."


_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `([^`]+)`")
_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")
_AT_PATH = re.compile(r"\s*- at `\$((?:\.[^`\s.\[]+|\[\d+\])*)`$")


def field_errors_from_messages(items: list[tuple[str, str]]) -> list[FieldError]:
    """Turn (key, message) pairs from msgspec/Litestar into errors naming the offending field."""
    errors: list[FieldError] = []
    for key, raw_message in items:
        message = raw_message
        field = key
        at = _AT_PATH.search(message)
        if at:
            message = message[: at.start()]
            path = at.group(1).lstrip(".")
            if path:
                field = path
        for pattern in (_UNKNOWN_FIELD, _MISSING_FIELD):
            named = pattern.search(message)
            if named:
                field = named.group(1) if field in {"data", ""} else f"{field}.{named.group(1)}"
        errors.append(FieldError(field or "body", message))
    return errors


def _validation_problem(exc: ValidationException) -> Problem:
    extra = exc.extra if isinstance(exc.extra, list) else []
    items = [
        (str(item.get("key", "")), str(item.get("message", "invalid value")))
        for item in extra
        if isinstance(item, dict)
    ]
    errors = field_errors_from_messages(items) or [FieldError("request", "invalid request")]
    names = ", ".join(dict.fromkeys(e.field for e in errors))
    return InvalidRequest(f"Invalid value for: {names}.", errors=errors)


# SQLSTATEs that say "the database cannot serve now", not "this request is wrong": class 08
# (connection exception), 53 (insufficient resources: too many connections, disk full), 57P0x
# (shutting down, crash restart, starting up: "the database system is shutting down"), 57014
# (statement timeout), 25006 (a read-only standby during a failover).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P0", "57014", "25006")


def _is_database_unavailable(exc: BaseException) -> bool:
    # Pool exhausted, lost or refused connections, statement timeouts, a restarting server.
    if isinstance(exc, FileNotFoundError | PermissionError):
        return False  # local OS errors are bugs or misconfiguration, not an unavailable database
    if isinstance(exc, sa_exc.TimeoutError | TimeoutError | OSError):
        return True  # pool exhausted, request deadline passed, refused or unreachable server
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        # "connection was closed in the middle of operation", "connection is closed", and the
        # protocol state asyncpg is left in when the server ends an idle session ("cannot
        # switch to state ...; another operation is in progress"); the pool drops the connection.
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_UNAVAILABLE_SQLSTATES)
    if isinstance(exc, sa_exc.DBAPIError):
        # SQLAlchemy's adapter wraps asyncpg's error: judge the driver's own.
        driver_error = exc.orig.__cause__ if exc.orig is not None else None
        return (
            bool(exc.connection_invalidated)
            or isinstance(exc, sa_exc.OperationalError)
            or (driver_error is not None and _is_database_unavailable(driver_error))
        )
    return False


def _safe(detail: str) -> bool:
    lowered = detail.lower()
    return "traceback" not in lowered and "select " not in lowered and len(detail) <= 300


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPES",
    "FieldError",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "NotFound",
    "PreconditionFailed",
    "Problem",
    "ProblemDetails",
    "ProblemKind",
    "ServiceUnavailable",
    "UnsupportedMediaType",
    "ValidationFailed",
    "field_errors_from_messages",
    "problem_details_plugin",
    "problem_specs",
]
