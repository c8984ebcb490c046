"""Run a TaskFlow API: one uvicorn process on HOST/PORT serving the service's app factory."""

from __future__ import annotations

import importlib
from pathlib import Path

import uvicorn

from taskflow_core.logs import configure_logging
from taskflow_core.settings import Settings, load_or_exit

GRACEFUL_SHUTDOWN_SECONDS = 20


def load_settings(program: str) -> Settings:
    """Settings from the environment; a bad value prints one line naming it and exits 2."""
    return load_or_exit(program, Settings.read)


def run(service: str, app_path: str) -> None:
    """Serve `module:factory` (`tasks_api.app:create_app`) until SIGTERM, then drain 20 s."""
    settings = load_settings(service)
    configure_logging(settings.logging.level)
    server = settings.server
    uvicorn.run(
        app_path,
        factory=True,
        host=server.host,
        port=server.port,
        workers=1,
        reload=server.reload,
        reload_dirs=source_dirs(app_path) if server.reload else None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_config=None,  # keep the JSON logging configured above
        proxy_headers=True,
        server_header=False,
    )


def source_dirs(app_path: str) -> list[str]:
    """The package source dirs of the service and of taskflow_core (what Skaffold syncs)."""
    service_package = app_path.split(":", 1)[0].split(".", 1)[0]
    packages = [service_package, "taskflow_core"]
    return [str(Path(_package_file(name)).resolve().parent) for name in packages]


def _package_file(name: str) -> str:
    module = importlib.import_module(name)
    if module.__file__ is None:
        raise RuntimeError(f"package {name} has no source directory")
    return module.__file__
