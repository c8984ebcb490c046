"""The stats-api application factory (`stats_api.app:create_app`); it connects to nothing."""

from __future__ import annotations

from litestar import Litestar
from taskflow_core.app import TaskflowCore
from taskflow_core.server import load_settings
from taskflow_core.settings import Settings

from stats_api.controller import StatsController

SERVICE = "stats-api"


def create_app(settings: Settings | None = None) -> Litestar:
    return Litestar(
        route_handlers=[StatsController],
        plugins=[TaskflowCore(service=SERVICE, settings=settings or load_settings())],
    )
