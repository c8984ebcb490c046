"""`create_api`: a TaskFlow API, wired by TaskflowPlugin, the one Litestar plugin that adds the
database, cache, errors, probes, metrics, access log, traces and the 64 KiB body limit.

    create_api("tasks-api", [TaskController], settings, services={"task_service": TaskService})

Handlers receive what they use by dependency injection: each of `services` is built once per app
from the request pool and the cache (`TaskService(pool, cache)`) and injected by its name; `db_pool`
(the RequestPool), `cache` (the Redis Cache) and `readiness_engine` (unpooled, for /ready) are
injectable too. Every one is a singleton, so a request resolves no dependency chain. Nothing
connects at construction; the lifespan opens the pool and closes everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.types import ControllerRouterHandler
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine

from taskflow_core import drain, gc_tuning, metrics, openapi, probes, tracing
from taskflow_core.access_log import AccessLog
from taskflow_core.build_info import record_build
from taskflow_core.cache import Cache
from taskflow_core.deadline import request_deadlines
from taskflow_core.engine import RequestPool, create_engine
from taskflow_core.http_methods import MethodSemantics
from taskflow_core.logs import configure_logging
from taskflow_core.pool_metrics import watch_pool
from taskflow_core.problems import problem_details_plugin
from taskflow_core.request_observer import RequestObserver
from taskflow_core.settings import Settings

MAX_BODY_BYTES = 64 * 1024
POOL_DEPENDENCY = "db_pool"
SHUTDOWN_MESSAGE = "shutdown: database pool and Redis connections closed"
ServiceFactory = Callable[[RequestPool, Cache], object]
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def create_api(
    service: str,
    route_handlers: list[ControllerRouterHandler],
    settings: Settings,
    *,
    services: Mapping[str, ServiceFactory] | None = None,
    dependencies: dict[str, Provide] | None = None,
    lifespan: Sequence[Lifespan] = (),
    tracer_provider: TracerProvider | None = None,
) -> Litestar:
    """The service's handlers, services, extra dependencies and lifespan hooks, wired by
    TaskflowPlugin, with HEAD and OPTIONS as documented. `tracer_provider` traces with that
    provider instead of the one OTEL_EXPORTER_OTLP_ENDPOINT would give (tests keep spans)."""
    app = Litestar(
        route_handlers=route_handlers,
        dependencies=dependencies,
        lifespan=list(lifespan),
        # Before Litestar's own schema plugins, so it documents Structs that refuse extra fields.
        plugins=[
            openapi.StrictStructSchemaPlugin(),
            TaskflowPlugin(service, settings, services=services, tracer_provider=tracer_provider),
        ],
    )
    app.asgi_handler = drain.ConnectionClose(MethodSemantics(app, app.asgi_handler))
    return app


class TaskflowPlugin(InitPlugin):
    """Shared wiring for every TaskFlow API; the service adds its route handlers and services."""

    def __init__(
        self,
        service: str,
        settings: Settings,
        version: str = "0.1.0",
        services: Mapping[str, ServiceFactory] | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.version = version
        self.services = dict(services or {})
        self.tracer_provider = tracer_provider

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        configure_logging(self.settings.logging, self.service)
        record_build(self.service, self.settings.revision)
        provider = self.tracer_provider
        if provider is None and tracing.exporter_configured():
            provider = tracing.tracer_provider(self.service)
        cache = Cache.from_settings(self.settings.cache, self.service)
        pool = RequestPool(
            self.settings.database.url, application_name=self.service, pool=self.settings.pool
        )
        watch_pool(self.service, pool)
        readiness = probes.ReadinessEngine(self._readiness_engine(), self.service)

        app_config.debug = False  # never a traceback in a response
        app_config.logging_config = None  # taskflow_core.logs owns logging
        app_config.openapi_config = openapi.openapi_config(self.service, self.version)
        app_config.plugins.append(problem_details_plugin())
        access_log = AccessLog(
            self.settings.logging.level,
            service=self.service,
            console=self.settings.logging.console,
        )
        tracer = tracing.RequestTracer(provider) if provider is not None else None
        app_config.middleware.append(
            RequestObserver(metrics.RequestMetrics(self.service), access_log, tracer)
        )
        app_config.middleware.append(request_deadlines)
        # Litestar 2.25 reads request_max_body_size from the constructor, not from this config:
        # a router layer between the app and every handler carries the 64 KiB limit instead.
        app_config.route_handlers = [
            Router(
                path="/",
                route_handlers=[
                    *app_config.route_handlers,
                    probes.health,
                    probes.ready,
                    metrics.MetricsController,
                ],
                request_max_body_size=MAX_BODY_BYTES,
            )
        ]
        singletons: dict[str, object] = {
            POOL_DEPENDENCY: pool,
            "cache": cache,
            "readiness_engine": readiness,
        }
        singletons.update({name: build(pool, cache) for name, build in self.services.items()})
        app_config.dependencies.update({name: _singleton(v) for name, v in singletons.items()})
        app_config.lifespan.append(_lifespan(pool, cache, readiness, provider, access_log))
        return app_config

    def _readiness_engine(self) -> AsyncEngine:
        return create_engine(
            self.settings.database.url,
            application_name=f"{self.service}-ready",
            pool=None,
            statement_timeout=probes.READY_DB_TIMEOUT,
            connect_timeout=min(self.settings.pool.connect_timeout, probes.READY_DB_TIMEOUT),
        )


def _singleton(value: object) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def _lifespan(
    pool: RequestPool,
    cache: Cache,
    readiness: probes.ReadinessEngine,
    provider: TracerProvider | None,
    access_log: AccessLog,
) -> Any:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await pool.open()  # connects nothing yet: a database that is down keeps the pod unready
        drain.listen()  # the supervisor's drain notice after SIGTERM (taskflow_core.server)
        if provider is not None:
            tracing.instrument_clients(provider)
        gc_tuning.tune_for_serving()  # last: what startup built is frozen
        # The schema revision found at start (taskflow_schema_revision_info), without waiting.
        with suppress_instrumentation():  # a read of our own, not a trace
            found = asyncio.create_task(probes.database_state(readiness))
        try:
            yield
        finally:
            found.cancel()
            access_log.flush()
            await pool.close()
            await cache.aclose()
            await readiness.engine.dispose()
            if provider is not None:
                tracing.uninstrument_clients()
                provider.shutdown()
            structlog.get_logger("taskflow.lifespan").info(SHUTDOWN_MESSAGE)

    return lifespan
