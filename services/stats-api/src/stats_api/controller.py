"""`GET /stats`: the figures from task_counts, through the Redis cache."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession
from taskflow_core.cache import Cache
from taskflow_core.health import CACHE_STATE_KEY

from stats_api.figures import load_stats
from stats_api.schema import Stats

# Bump the suffix whenever the body's shape changes: old and new pods share Redis during a rollout.
STATS_CACHE_KEY = "stats:v1"


class StatsController(Controller):
    path = "/stats"
    tags = ["stats"]

    @get(
        operation_id="getStats",
        summary="Task statistics",
        media_type=MediaType.JSON,
        responses={200: ResponseSpec(data_container=Stats, description="Task statistics")},
    )
    async def get_stats(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[bytes]:
        """Totals, completion rate and per-priority counts; exact at any table size."""
        cache: Cache = request.app.state[CACHE_STATE_KEY]
        body = await cache.fetch_current(
            db_session, STATS_CACHE_KEY, lambda: load_stats(db_session)
        )
        return Response(body, media_type=MediaType.JSON)
