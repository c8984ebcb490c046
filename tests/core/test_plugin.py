"""Building an app connects to nothing (deploy tests import it), and wires the shared routes."""

from __future__ import annotations

import socket
from pathlib import Path

from litestar import Litestar
from litestar.routes import HTTPRoute
from taskflow_core.plugin import MAX_BODY_BYTES
from taskflow_core.settings import Settings
from tasks_api.app import create_app

from devstack.servers import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
CORE = REPO / "libs" / "taskflow-core" / "src"


def _closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:  # nothing listens there: any connection attempt would fail
        assert probe.connect_ex((LOOPBACK, port)) != 0
    return port


def test_create_app_connects_to_nothing_and_lists_its_routes() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"postgresql://nobody@{LOOPBACK}:{_closed_port()}/nowhere",
            "REDIS_URL": f"redis://{LOOPBACK}:{_closed_port()}/0",
        }
    )
    app = create_app(settings)
    assert isinstance(app, Litestar)
    paths = {route.path for route in app.routes}
    assert {"/tasks", "/tasks/{task_id:int}", "/health", "/ready", "/metrics"} <= paths
    assert "/schema/openapi.json" in paths
    assert {"db_pool", "cache", "readiness_engine", "task_service"} <= set(app.dependencies)
    assert app.debug is False


def test_handlers_get_what_they_use_by_injection_never_from_app_state() -> None:
    sources = [*SERVICES.glob("*/src/**/*.py"), *CORE.glob("**/*.py")]
    assert sources
    for source in sources:
        assert ".state[" not in source.read_text(), source


def test_every_handler_carries_the_64_kib_body_limit() -> None:
    app = create_app(Settings.from_env({"DATABASE_URL": f"postgresql://x@{LOOPBACK}/x"}))
    for route in app.routes:
        if route.path.startswith("/tasks"):
            assert isinstance(route, HTTPRoute)
            for handler in route.route_handlers:
                assert handler.resolve_request_max_body_size() == MAX_BODY_BYTES
