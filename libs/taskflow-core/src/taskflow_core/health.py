"""Liveness (`/health`, touches nothing) and readiness (`/ready`, own connections, short waits)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.ext.asyncio import AsyncEngine

from taskflow_core.cache import Cache
from taskflow_core.migrations import SchemaStatus, schema_status
from taskflow_core.telemetry import NOT_OBSERVED

READY_DB_TIMEOUT = 3.0
READY_STATUSES = frozenset({SchemaStatus.AT_HEAD, SchemaStatus.AHEAD})
# Set by TaskflowCore in app.state: an unpooled engine (readiness never waits on the request pool).
READY_ENGINE_KEY = "taskflow_ready_engine"
CACHE_STATE_KEY = "cache"

log = structlog.get_logger("taskflow.health")


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str  # "ok", "degraded" (ready without the cache) or "unavailable"
    database: str
    schema: str
    cache: str


@get("/health", operation_id="getHealth", tags=["probes"], opt=NOT_OBSERVED, sync_to_thread=False)
def health() -> Health:
    """Liveness: the process answers; no dependency is consulted."""
    return Health(status="ok")


@get("/ready", operation_id="getReadiness", tags=["probes"], opt=NOT_OBSERVED)
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    """Readiness: the database answers on a connection of its own, schema at or past head."""
    engine: AsyncEngine = request.app.state[READY_ENGINE_KEY]
    cache: Cache | None = request.app.state.get(CACHE_STATE_KEY)
    (database, schema), cache_state = await asyncio.gather(
        _database_state(engine), _cache_state(cache)
    )
    ok = database == "ok" and schema in READY_STATUSES
    status = "unavailable" if not ok else ("degraded" if cache_state == "unavailable" else "ok")
    return Response(
        Readiness(status=status, database=database, schema=schema, cache=cache_state),
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )


async def _database_state(engine: AsyncEngine) -> tuple[str, str]:
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT), engine.connect() as conn:
            status = await schema_status(conn)
    except Exception as exc:  # any failure means "not ready", never a 500
        log.warning("readiness: database check failed", error=type(exc).__name__)
        return "unavailable", "unknown"
    return "ok", str(status)


async def _cache_state(cache: Cache | None) -> str:
    if cache is None or not cache.enabled:
        return "disabled"
    # Redis is only a cache: when it does not answer, report it and stay ready.
    return "ok" if await cache.ping() else "unavailable"
