"""The tasks-api app factory (`tasks_api.app:create_app`); building it connects to nothing.

controllers.py  HTTP: parameters, status codes, headers (TaskController, /tasks)
service.py      TaskService: SQL calls, keyset pages, cache keys, ETag/version rules
queries.py      the SQL statements (the index tests EXPLAIN the list query)
cursor.py, etag.py, params.py, body.py, schemas.py: formats and request/response bodies
"""

from __future__ import annotations

from litestar import Litestar
from opentelemetry.sdk.trace import TracerProvider
from taskflow_core.plugin import create_api
from taskflow_core.server import load_settings
from taskflow_core.settings import Settings

from tasks_api import SERVICE
from tasks_api.controllers import TaskController
from tasks_api.service import TaskService


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> Litestar:
    """`tracer_provider`: trace into it instead of OTEL_EXPORTER_OTLP_ENDPOINT's (tests)."""
    return create_api(
        SERVICE,
        [TaskController],
        settings or load_settings(SERVICE),
        services={"task_service": TaskService},
        tracer_provider=tracer_provider,
    )
