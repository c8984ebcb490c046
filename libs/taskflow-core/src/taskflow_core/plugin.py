"""`create_api`: a TaskFlow API, wired by TaskflowPlugin, the one Litestar plugin that adds the
database, cache, errors, probes, metrics, traces and the 64 KiB body limit.

    create_api("tasks-api", [TaskController], settings)

Handlers receive what they use by dependency injection: `db_engine` (the request pool's
AsyncEngine, advanced-alchemy's plugin owns its lifecycle), `cache` (the Redis Cache) and
`readiness_engine` (unpooled, for /ready). Nothing connects at construction; the lifespan closes
everything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.plugins.opentelemetry import OpenTelemetryPlugin
from litestar.types import ControllerRouterHandler
from opentelemetry.sdk.trace import TracerProvider

from taskflow_core import metrics, openapi, probes, tracing
from taskflow_core.cache import Cache
from taskflow_core.engine import REQUEST_STATEMENT_TIMEOUT, create_engine
from taskflow_core.http_methods import MethodSemantics
from taskflow_core.logs import configure_logging
from taskflow_core.problems import problem_details_plugin
from taskflow_core.settings import Settings

MAX_BODY_BYTES = 64 * 1024
ENGINE_DEPENDENCY = "db_engine"


def create_api(
    service: str,
    route_handlers: list[ControllerRouterHandler],
    settings: Settings,
    *,
    dependencies: dict[str, Provide] | None = None,
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
) -> Litestar:
    """The service's handlers (plus its own dependencies and lifespan hooks) wired by
    TaskflowPlugin, with HEAD and OPTIONS as documented."""
    app = Litestar(
        route_handlers=route_handlers,
        dependencies=dependencies,
        lifespan=list(lifespan),
        # Before Litestar's own schema plugins, so it documents Structs that refuse extra fields.
        plugins=[openapi.StrictStructSchemaPlugin(), TaskflowPlugin(service, settings)],
    )
    app.asgi_handler = MethodSemantics(app, app.asgi_handler)
    return app


class TaskflowPlugin(InitPlugin):
    """Shared wiring for every TaskFlow API; the service adds only its own route handlers."""

    def __init__(self, service: str, settings: Settings, version: str = "0.1.0") -> None:
        self.service = service
        self.settings = settings
        self.version = version

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        configure_logging(self.settings.logging.level)
        provider = tracing.tracer_provider(self.service)
        cache = Cache.from_settings(self.settings.cache, self.service)
        readiness = probes.ReadinessEngine(self._readiness_engine())

        app_config.debug = False  # never a traceback in a response
        app_config.logging_config = None  # taskflow_core.logs owns logging
        app_config.openapi_config = openapi.openapi_config(self.service, self.version)
        app_config.plugins.extend(
            [
                SQLAlchemyPlugin(config=self._alchemy_config()),
                OpenTelemetryPlugin(tracing.opentelemetry_config(provider)),
                problem_details_plugin(),
            ]
        )
        app_config.middleware.insert(0, metrics.prometheus_config(self.service).middleware)
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
        app_config.dependencies.update(
            {
                "cache": Provide(lambda: cache, use_cache=True, sync_to_thread=False),
                "readiness_engine": Provide(
                    lambda: readiness, use_cache=True, sync_to_thread=False
                ),
            }
        )
        app_config.before_request = app_config.before_request or tracing.name_span_after_route
        app_config.lifespan.append(_closing(cache, readiness, provider))
        return app_config

    def _alchemy_config(self) -> SQLAlchemyAsyncConfig:
        engine = create_engine(
            self.settings.database.url,
            application_name=self.service,
            pool=self.settings.pool,
            statement_timeout=REQUEST_STATEMENT_TIMEOUT,
        )
        return SQLAlchemyAsyncConfig(
            engine_instance=engine,
            engine_dependency_key=ENGINE_DEPENDENCY,
            set_default_exception_handler=False,
        )

    def _readiness_engine(self) -> Any:
        return create_engine(
            self.settings.database.url,
            application_name=f"{self.service}-ready",
            pool=None,
            statement_timeout=probes.READY_DB_TIMEOUT,
        )


def _closing(cache: Cache, readiness: probes.ReadinessEngine, provider: TracerProvider) -> Any:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await cache.aclose()
            await readiness.engine.dispose()
            provider.shutdown()

    return lifespan
