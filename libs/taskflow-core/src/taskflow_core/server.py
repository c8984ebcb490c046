"""Run a TaskFlow service: one uvicorn process on HOST/PORT with the service's app factory."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import uvicorn

from taskflow_core.settings import ConfigError, Settings
from taskflow_core.telemetry import configure_logging

GRACEFUL_SHUTDOWN_SECONDS = 20
EXIT_CONFIG = 2


def load_settings() -> Settings:
    """Settings from the environment; a bad value prints one line naming it and exits 2."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def run(app_path: str, settings: Settings | None = None) -> None:
    """Serve `module:factory` (`tasks_api.app:create_app`) until SIGTERM, then drain 20 s."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        app_path,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=1,
        reload=settings.reload,
        reload_dirs=source_dirs(app_path) if settings.reload else None,
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
