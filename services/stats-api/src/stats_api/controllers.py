"""`GET /stats` and `GET /scaling` over HTTP; StatsService and ScalingWatcher hold the data."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from stats_api.scaling.watcher import ScalingWatcher
from stats_api.schemas import Scaling, Stats
from stats_api.service import StatsService

# The body is read from memory the watch keeps current: a cached copy could only be staler.
SCALING_CACHE_CONTROL = "no-store"


class StatsController(Controller):
    path = "/stats"
    tags = ["stats"]

    @get(
        operation_id="getStats",
        summary="Task statistics",
        media_type=MediaType.JSON,
        responses={200: ResponseSpec(data_container=Stats, description="Task statistics")},
    )
    async def get_stats(self, stats_service: NamedDependency[StatsService]) -> Response[bytes]:
        """Totals, completion rate and per-priority counts; exact at any table size."""
        return Response(await stats_service.stats_body(), media_type=MediaType.JSON)


class ScalingController(Controller):
    path = "/scaling"
    tags = ["scaling"]

    @get(
        operation_id="getScaling",
        summary="Autoscaling of both APIs",
        media_type=MediaType.JSON,
        sync_to_thread=False,
        response_headers=[
            ResponseHeader(
                name="Cache-Control",
                value=SCALING_CACHE_CONTROL,
                description="never cached: each answer is the watch's latest state",
            )
        ],
    )
    def get_scaling(self, scaling_watcher: NamedDependency[ScalingWatcher]) -> Scaling:
        """Replicas, limits and CPU utilisation of tasks-api and stats-api as their
        HorizontalPodAutoscalers and Deployments last reported them (a background watch keeps
        them current); outside a cluster `in_cluster` is false and `services` empty."""
        return scaling_watcher.snapshot()
