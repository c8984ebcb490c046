"""The access log: one JSON line per request on stdout, written directly (msgspec), not through
the stdlib logging chain and structlog's formatter — that chain cost more CPU than a cached
request (README.md, "Performance"). Lines carry the same base fields as every other log line
(`timestamp`, `level`, `logger`, `event`) and the trace context when a span is recording.

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
from opentelemetry import trace

LOGGER_NAME = "taskflow.access"
FLUSH_SECONDS = 0.25
SERVER_ERROR = 500


class AccessLine(msgspec.Struct, omit_defaults=True):
    timestamp: str
    level: str
    logger: str
    event: str  # `GET /tasks 200`: readable without a JSON viewer
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


class AccessLog:
    def __init__(self, level: str, stream: IO[bytes] | None = None, tracing: bool = False) -> None:
        numeric = logging.getLevelNamesMapping()[level]
        self._info = numeric <= logging.INFO
        self._error = numeric <= logging.ERROR
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._tracing = tracing
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
        traceparent: bytes | None = None,
    ) -> None:
        error = status >= SERVER_ERROR
        if not (self._error if error else self._info):
            return
        line = AccessLine(
            timestamp=datetime.now(UTC).isoformat(),
            level="error" if error else "info",
            logger=LOGGER_NAME,
            event=f"{method} {path} {status}",
            method=method,
            path=path,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 3),
            client=client,
        )
        if self._tracing:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                line.trace_id = format(context.trace_id, "032x")
                line.span_id = format(context.span_id, "016x")
        elif traceparent is not None:
            # No span is recorded without an exporter, yet the caller's trace is still named.
            line.trace_id = trace_id_of(traceparent)
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
