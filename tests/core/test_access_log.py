"""The access log: one JSON line per request, the caller's trace id named even without an
exporter, lines written in batches and error lines at once."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from taskflow_core.access_log import FLUSH_SECONDS, AccessLog, trace_id_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (TRACEPARENT, TRACE_ID),
        (TRACEPARENT.upper(), TRACE_ID),
        (b" " + TRACEPARENT + b" ", TRACE_ID),
        (b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", None),  # the all-zero id is invalid
        (b"00-4bf92f3577b34da6-00f067aa0ba902b7-01", None),
        (b"00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        (b"garbage", None),
    ],
)
def test_the_trace_id_of_a_traceparent(header: bytes, expected: str | None) -> None:
    assert trace_id_of(header) == expected


async def test_lines_carry_the_callers_trace_id_and_errors_are_written_at_once() -> None:
    stream = io.BytesIO()
    log = AccessLog("INFO", stream=stream)
    log.request("GET", "/tasks", "/tasks", 200, 0.0042, "127.0.0.1:5000", trace_id_of(TRACEPARENT))
    assert stream.getvalue() == b""  # collected, not yet written
    log.request("POST", "/tasks", "/tasks", 503, 0.1, None)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["event"], first["trace_id"], first["duration_ms"]) == (
        "GET /tasks 200",
        TRACE_ID,
        4.2,
    )
    assert (second["level"], second["status"], "trace_id" in second) == ("error", 503, False)


async def test_info_lines_are_written_after_the_flush_delay_and_not_at_warning() -> None:
    stream = io.BytesIO()
    AccessLog("WARNING", stream=stream).request("GET", "/stats", "/stats", 200, 0.001, None)
    log = AccessLog("INFO", stream=stream)
    log.request("GET", "/stats", "/stats", 200, 0.001, None)
    await asyncio.sleep(FLUSH_SECONDS * 2)
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == [
        "GET /stats 200"
    ]


async def test_console_lines_are_readable_and_name_the_trace() -> None:
    stream = io.BytesIO()
    log = AccessLog("INFO", stream=stream, service="tasks-api", console=True)
    log.request("GET", "/tasks/7", "/tasks/{task_id}", 503, 0.0123, None, TRACE_ID)
    (line,) = stream.getvalue().decode().splitlines()
    assert "error GET /tasks/7 503 12.3 ms" in line
    assert line.endswith(f"route=/tasks/{{task_id}} trace_id={TRACE_ID}")
    assert not line.startswith("{")
