"""Probes of an API: `GET /health` (liveness, touches nothing) and `GET /ready` (readiness).

Readiness checks the database on a connection of its own (never the request pool, so a busy
pool cannot make pods unready) and the schema at or beyond this image's head; Redis down leaves
the pod ready, reported as `degraded`.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy.ext.asyncio import AsyncEngine

from taskflow_core import drain
from taskflow_core.build_info import record_schema_revision
from taskflow_core.cache import Cache
from taskflow_core.metrics import NOT_OBSERVED
from taskflow_core.schema_version import SchemaStatus, classify, current_revisions

READY_DB_TIMEOUT = 3.0
READY_STATUSES = frozenset({SchemaStatus.AT_HEAD, SchemaStatus.AHEAD})

log = structlog.get_logger("taskflow.probes")


class ReadinessEngine:
    """The unpooled engine readiness checks use (a dependency type of its own)."""

    def __init__(self, engine: AsyncEngine, service: str = "") -> None:
        self.engine = engine
        self.service = service  # whose taskflow_schema_revision_info a check updates


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str  # "ok", "degraded" (ready without the cache), "unavailable" or "draining"
    database: str
    schema: str
    cache: str


@get("/health", operation_id="getHealth", tags=["probes"], opt=NOT_OBSERVED, sync_to_thread=False)
def health() -> Health:
    """Liveness: the process answers; no dependency is consulted."""
    return Health(status="ok")


@get("/ready", operation_id="getReadiness", tags=["probes"], opt=NOT_OBSERVED)
async def ready(
    readiness_engine: NamedDependency[ReadinessEngine], cache: NamedDependency[Cache]
) -> Response[Readiness]:
    """Readiness: the database answers on a connection of its own, schema at or past head;
    503 `draining` from SIGTERM on, so no new traffic is sent to a pod that is stopping."""
    if drain.STATE.draining:
        return Response(
            Readiness(
                status="draining", database="unchecked", schema="unchecked", cache="unchecked"
            ),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    with suppress_instrumentation():  # probes are not traced, nor their statements
        (database, schema), cache_state = await asyncio.gather(
            database_state(readiness_engine), _cache_state(cache)
        )
    ok = database == "ok" and schema in READY_STATUSES
    status = "unavailable" if not ok else ("degraded" if cache_state == "unavailable" else "ok")
    return Response(
        Readiness(status=status, database=database, schema=schema, cache=cache_state),
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )


async def database_state(readiness: ReadinessEngine) -> tuple[str, str]:
    """("ok", schema status) or ("unavailable", "unknown"); records the revision found."""
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT), readiness.engine.connect() as conn:
            revisions = await current_revisions(conn)
    except Exception as exc:  # any failure means "not ready", never a 500
        log.warning("readiness: database check failed", error=type(exc).__name__)
        return "unavailable", "unknown"
    if readiness.service:
        record_schema_revision(readiness.service, ",".join(revisions) or "none")
    return "ok", str(classify(revisions))


async def _cache_state(cache: Cache) -> str:
    if not cache.enabled:
        return "disabled"
    # Redis is only a cache: when it does not answer, report it and stay ready.
    return "ok" if await cache.ping() else "unavailable"
