"""Run a TaskFlow API: granian serving the service's app factory on HOST/PORT.

One worker process under granian's supervisor (PID 1 in the image), which turns SIGTERM into a
graceful drain bounded by GRACEFUL_SHUTDOWN_SECONDS. Granian was measured against uvicorn
(httptools and h11) by the benchmark harness: less CPU per request on every endpoint
(README.md, "Performance"). RELOAD=true restarts the worker when a source file changes.
"""

from __future__ import annotations

import importlib
import multiprocessing
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces, Loops
from granian.log import LogLevels

from taskflow_core.logs import configure_logging, granian_log_config
from taskflow_core.settings import Settings, load_or_exit

GRACEFUL_SHUTDOWN_SECONDS = 20


def load_settings(program: str) -> Settings:
    """Settings from the environment; a bad value prints one line naming it and exits 2."""
    return load_or_exit(program, Settings.read)


def run(service: str, app_path: str) -> None:
    """Serve `module:factory` (`tasks_api.app:create_app`) until SIGTERM, then drain 20 s."""
    settings = load_settings(service)
    level = settings.logging.level
    configure_logging(settings.logging, service)
    server = settings.server
    if server.reload:
        # A forked worker inherits the supervisor's imported modules (taskflow_core among them)
        # and would run the old code after a reload; a spawned one imports what is on disk.
        multiprocessing.set_start_method("spawn", force=True)
    Granian(
        app_path,
        address=server.host,
        port=server.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        loop=Loops.uvloop,
        log_level=LogLevels(level.lower()),
        log_dictconfig=granian_log_config(settings.logging),
        log_access=False,  # taskflow_core.access_log writes one line per request, cheaper
        workers_kill_timeout=GRACEFUL_SHUTDOWN_SECONDS,
        reload=server.reload,
        reload_paths=[Path(d) for d in source_dirs(app_path)] if server.reload else None,
    ).serve()


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
