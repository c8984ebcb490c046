"""The access log: one JSON line per request on stdout, written directly (msgspec), not through
the stdlib logging chain and structlog's formatter — that chain cost more CPU than a cached
request (README.md, "Performance"). Lines carry the same base fields as every other log line
(`timestamp`, `level`, `logger`, `event`, `service`), the request's method, path, route template,
status and duration, and its trace context (taskflow_core.request_observer): the span's ids
when it is sampled, else the trace id of the caller's `traceparent`. With LOG_FORMAT=console
the same fields make one readable line.

2xx-4xx lines are `info` (written at LOG_LEVEL INFO or DEBUG); 5xx lines are `error` and
written at every level but CRITICAL. Lines are collected and written together at most
FLUSH_SECONDS after the first of them (an error line at once): one write per batch instead of
one per request.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import IO

import msgspec

LOGGER_NAME = "taskflow.access"
FLUSH_SECONDS = 0.25
SERVER_ERROR = 500


class AccessLine(msgspec.Struct, omit_defaults=True):
    timestamp: str
    level: str
    logger: str
    event: str  # `GET /tasks 200`: readable without a JSON viewer
    service: str
    method: str
    path: str
    route: str
    status: int
    duration_ms: float
    client: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


def trace_id_of(traceparent: bytes) -> str | None:
    """The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), if valid."""
    parts = traceparent.strip().split(b"-")
    if len(parts) < 4 or len(parts[1]) != 32:
        return None
    trace_id = parts[1].decode("ascii", "replace").lower()
    valid = all(c in "0123456789abcdef" for c in trace_id) and trace_id.strip("0") != ""
    return trace_id if valid else None


def console_line(line: AccessLine) -> bytes:
    """`12:00:01.234 info  GET /tasks 200 3.1 ms  route=/tasks trace_id=...` for a person."""
    context = "".join(
        f" {name}={value}"
        for name, value in (("route", line.route), ("trace_id", line.trace_id))
        if value is not None
    )
    clock = line.timestamp[11:23]
    return f"{clock} {line.level:<5} {line.event} {line.duration_ms:g} ms {context}\n".encode()


class AccessLog:
    def __init__(
        self,
        level: str,
        stream: IO[bytes] | None = None,
        service: str = "",
        console: bool = False,
    ) -> None:
        numeric = logging.getLevelNamesMapping()[level]
        self._info = numeric <= logging.INFO
        self._error = numeric <= logging.ERROR
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._service = service
        self._console = console
        self._encoder = msgspec.json.Encoder()
        self._pending: list[bytes] = []
        self._flush_at: asyncio.TimerHandle | None = None

    def request(
        self,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
        client: str | None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> None:
        error = status >= SERVER_ERROR
        if not (self._error if error else self._info):
            return
        line = AccessLine(
            timestamp=datetime.now(UTC).isoformat(),
            level="error" if error else "info",
            logger=LOGGER_NAME,
            event=f"{method} {path} {status}",
            service=self._service,
            method=method,
            path=path,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 3),
            client=client,
            trace_id=trace_id,
            span_id=span_id,
        )
        if self._console:
            self._pending.append(console_line(line))
        else:
            self._pending.append(self._encoder.encode(line) + b"\n")
        if error:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the collected lines (also at shutdown)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            self._stream.write(data)
            self._stream.flush()
