"""The one logging setup of every TaskFlow process: JSON lines on stdout through structlog.

Servers and the migrate command call `configure_logging(level)`; stdlib loggers (uvicorn,
alembic, sqlalchemy) go through the same formatter. It imports no web framework, so the
migrate initContainer starts fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace

# Paths whose access-log lines are dropped: probes and scrapes arrive every few seconds per pod.
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Log lines inside a request carry its trace and span ids (logs and traces correlate)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def configure_logging(level: str) -> None:
    """JSON lines on stdout from structlog and every stdlib logger, at `level`."""
    numeric = logging.getLevelNamesMapping()[level]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Structured tracebacks without frame locals: locals may hold headers or secrets.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").filters[:] = [QuietPathFilter()]


class QuietPathFilter(logging.Filter):
    """Drops uvicorn access-log lines of probes and scrapes: frequent, never news."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) > 2 and args[2] in QUIET_PATHS)
