"""The stats-api app factory (`stats_api.app:create_app`); building it connects to nothing.

controllers.py  HTTP: StatsController (/stats)
service.py      StatsService: the cache key and the figures from the six count rows
queries.py      the SQL; schemas.py the response body
"""

from __future__ import annotations

from litestar import Litestar
from taskflow_core.plugin import TaskflowPlugin
from taskflow_core.server import load_settings
from taskflow_core.settings import Settings

from stats_api import SERVICE
from stats_api.controllers import StatsController
from stats_api.service import StatsService


def create_app(settings: Settings | None = None) -> Litestar:
    return Litestar(
        route_handlers=[StatsController],
        plugins=[
            TaskflowPlugin(
                service=SERVICE,
                settings=settings or load_settings(SERVICE),
                services={"stats_service": StatsService},
            )
        ],
    )
