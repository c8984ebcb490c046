"""`GET /stats` over HTTP; StatsService reads the figures."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from stats_api.schemas import Stats
from stats_api.service import StatsService


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
