"""The stats-api app factory (`stats_api.app:create_app`); building it connects to nothing.

controllers.py  HTTP: StatsController (/stats), ScalingController (/scaling)
service.py      StatsService: the cache key and the figures from the six count rows
queries.py      the SQL; schemas.py the response bodies
scaling/        ScalingWatcher: the namespace's HPAs and Deployments, watched in the background
"""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from taskflow_core.plugin import create_api
from taskflow_core.server import load_settings
from taskflow_core.settings import Settings, load_or_exit

from stats_api import SERVICE
from stats_api.controllers import ScalingController, StatsController
from stats_api.scaling.cluster import find_cluster
from stats_api.scaling.watcher import ScalingWatcher
from stats_api.service import StatsService


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings(SERVICE)
    scaling = ScalingWatcher(load_or_exit(SERVICE, find_cluster))
    return create_api(
        SERVICE,
        [StatsController, ScalingController],
        settings,
        services={"stats_service": StatsService},
        dependencies={
            "scaling_watcher": Provide(lambda: scaling, use_cache=True, sync_to_thread=False)
        },
        lifespan=[scaling.lifespan],
    )
