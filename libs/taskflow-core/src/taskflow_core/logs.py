"""The one logging setup of every TaskFlow process: JSON lines on stdout through structlog.

Servers and the migrate command call `configure_logging(level)`; stdlib loggers (granian,
alembic, sqlalchemy) go through the same formatter (`granian_log_config` hands it to granian,
which configures logging in its own processes). It imports no web framework, so the migrate
initContainer starts fast. Per-request lines are written by taskflow_core.access_log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace

# Probes and scrapes arrive every few seconds per pod: never traced (nor access-logged).
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Log lines inside a request carry its trace and span ids (logs and traces correlate)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
# The server's own loggers (granian's Python side logs as `_granian`).
SERVER_LOGGERS = ("_granian", "granian.access")


def configure_logging(level: str) -> None:
    """JSON lines on stdout from structlog and every stdlib logger, at `level`."""
    numeric = logging.getLevelNamesMapping()[level]
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in (*SERVER_LOGGERS, "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def json_formatter() -> logging.Formatter:
    """The formatter of every stdlib log record: one JSON object per line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Structured tracebacks without frame locals: locals may hold headers or secrets.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ],
    )


def granian_log_config(level: str) -> dict[str, Any]:
    """A logging dictConfig for granian: its loggers go to the root's JSON handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.json_formatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS},
    }
