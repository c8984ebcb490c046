"""The tasks-api app factory (`tasks_api.app:create_app`); building it connects to nothing."""

from __future__ import annotations

from litestar import Litestar
from taskflow_core.app import TaskflowCore
from taskflow_core.server import load_settings
from taskflow_core.settings import Settings

from tasks_api.controllers import TaskController

SERVICE = "tasks-api"


def create_app(settings: Settings | None = None) -> Litestar:
    return Litestar(
        route_handlers=[TaskController],
        plugins=[TaskflowCore(service=SERVICE, settings=settings or load_settings())],
    )
