"""The one logging setup of every TaskFlow process: JSON lines on stdout through structlog, or
readable lines when LOG_FORMAT says so (taskflow_core.settings.logging).

Servers and the migrate command call `configure_logging(settings, service)`; every line carries
`service`, and inside a traced request `trace_id` and `span_id`. Stdlib loggers (granian,
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

from taskflow_core.settings.logging import LoggingSettings

# Probes and scrapes arrive every few seconds per pod: never traced (nor access-logged).
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Log lines inside a request carry its trace and span ids (logs and traces correlate)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        if context.trace_flags.sampled:  # an unsampled span is never exported: no id to follow
            event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class AddService:
    """Every line names the process's service (`tasks-api`, `taskflow-migrate`)."""

    service: str | None = None

    def __call__(self, _: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        if self.service is not None:
            event.setdefault("service", self.service)
        return event


_SERVICE = AddService()
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    _SERVICE,
    add_trace_context,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
# The server's own loggers (granian's Python side logs as `_granian`).
SERVER_LOGGERS = ("_granian", "granian.access")
# Loggers that say at INFO what only matters when debugging (alembic lists every plugin it sets up).
NOISY_LOGGERS = ("alembic.runtime.plugins",)


def configure_logging(settings: LoggingSettings, service: str | None = None) -> None:
    """JSON (or console) lines on stdout from structlog and every stdlib logger."""
    numeric = logging.getLevelNamesMapping()[settings.level]
    if service is not None:
        _SERVICE.service = service
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(console_formatter() if settings.console else json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in (*SERVER_LOGGERS, "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


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


def console_formatter() -> logging.Formatter:
    """Readable lines for a person at a terminal: time, level, event, then key=value."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(
                colors=sys.stdout.isatty(),
                exception_formatter=structlog.dev.plain_traceback,
            ),
        ],
    )


def granian_log_config(settings: LoggingSettings) -> dict[str, Any]:
    """A logging dictConfig for granian: its loggers go to the root's handler, same format."""
    formatter = "console_formatter" if settings.console else "json_formatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": {"()": f"{__name__}.{formatter}"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "lines",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["stdout"], "level": settings.level},
        "loggers": {name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS},
    }
