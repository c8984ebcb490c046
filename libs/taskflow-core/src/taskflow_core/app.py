"""TaskflowCore: the one plugin that wires a service (database, cache, telemetry, errors, probes).

Usage:
    Litestar(route_handlers=[...], plugins=[TaskflowCore(service="tasks-api", settings=settings)])

Nothing here connects to anything at construction; connections open on first use and close in
the lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins import InitPlugin
from litestar.plugins.opentelemetry import OpenTelemetryPlugin

from taskflow_core import health, problems, telemetry
from taskflow_core.cache import Cache
from taskflow_core.db import create_engine, create_unpooled_engine
from taskflow_core.settings import Settings

MAX_BODY_BYTES = 64 * 1024
SESSION_DEPENDENCY_KEY = "db_session"
CACHE_STATE_KEY = health.CACHE_STATE_KEY  # app.state.cache: the Cache of this service


class TaskflowCore(InitPlugin):
    """Shared wiring for every TaskFlow API; the service adds only its own route handlers."""

    def __init__(self, service: str, settings: Settings, version: str = "0.1.0") -> None:
        self.service = service
        self.settings = settings
        self.version = version

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        telemetry.configure_logging(self.settings.log_level)
        provider = telemetry.tracer_provider(self.service)

        app_config.debug = False  # never a traceback in a response
        app_config.logging_config = None  # structlog (telemetry.configure_logging) owns logging
        app_config.openapi_config = OpenAPIConfig(
            title=self.service,
            version=self.version,
            path="/schema",
            use_handler_docstrings=True,
        )
        app_config.plugins.extend(
            [
                SQLAlchemyPlugin(config=self._alchemy_config()),
                OpenTelemetryPlugin(telemetry.opentelemetry_config(provider)),
            ]
        )
        app_config.middleware.insert(0, telemetry.prometheus_config(self.service).middleware)
        # Litestar 2.25 reads request_max_body_size from the constructor, not from this config:
        # a router layer between the app and every handler carries the 64 KiB limit instead.
        app_config.route_handlers = [
            Router(
                path="/",
                route_handlers=[
                    *app_config.route_handlers,
                    health.health,
                    health.ready,
                    telemetry.MetricsController,
                ],
                request_max_body_size=MAX_BODY_BYTES,
            )
        ]
        app_config.exception_handlers[Exception] = problems.handle_exception
        app_config.before_request = app_config.before_request or telemetry.name_span_after_route
        app_config.state[health.READY_ENGINE_KEY] = create_unpooled_engine(
            self.settings, f"{self.service}-ready"
        )
        app_config.state[CACHE_STATE_KEY] = Cache.from_settings(self.settings, self.service)
        app_config.lifespan.append(_lifespan(provider))
        return app_config

    def _alchemy_config(self) -> SQLAlchemyAsyncConfig:
        return SQLAlchemyAsyncConfig(
            engine_instance=create_engine(self.settings, self.service),
            session_config=AsyncSessionConfig(expire_on_commit=False),
            session_dependency_key=SESSION_DEPENDENCY_KEY,
            before_send_handler="autocommit",
            set_default_exception_handler=False,
        )


def _lifespan(provider: Any) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.state[CACHE_STATE_KEY].aclose()
            await app.state[health.READY_ENGINE_KEY].dispose()
            provider.shutdown()

    return lifespan
