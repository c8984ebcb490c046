"""Run a TaskFlow API: granian serving the service's app factory on HOST/PORT.

One worker process under granian's supervisor (PID 1 in the image). SIGTERM starts a drain of
at most GRACEFUL_SHUTDOWN_SECONDS: for DRAIN_SECONDS (default 5) the worker keeps answering, every
response with `Connection: close` and /ready 503 (taskflow_core.drain); then granian stops
accepting, finishes the requests in flight within WORKER_STOP_SECONDS, runs the lifespan
shutdown (pool, Redis and tracing closed) and exits 0. A second SIGTERM or SIGINT skips the wait.
Granian was measured against uvicorn (httptools and h11) by the benchmark harness: less CPU per
request on every endpoint (README.md, "Performance"). RELOAD=true restarts the worker when a
source file changes.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

from granian.constants import Interfaces, Loops
from granian.log import LogLevels
from granian.server.mp import MPServer

from taskflow_core.drain import DRAIN_SIGNAL
from taskflow_core.logs import configure_logging, granian_log_config
from taskflow_core.settings import Settings, load_or_exit
from taskflow_core.settings.server import MAX_DRAIN_SECONDS

WORKER_STOP_SECONDS = 20  # granian's own drain: in-flight requests, then the lifespan shutdown
# From SIGTERM to exit at most: the grace period of deploy/base/api adds preStop and a margin.
GRACEFUL_SHUTDOWN_SECONDS = int(MAX_DRAIN_SECONDS) + WORKER_STOP_SECONDS


class DrainingGranian(MPServer):
    """granian's supervisor, with a drain phase between the first SIGTERM and its own stop."""

    drain_seconds = 0.0
    _drain_timer: threading.Timer | None = None

    def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
        if self._drain_timer is not None or self.drain_seconds <= 0:
            super().signal_handler_interrupt(*args, **kwargs)  # type: ignore[no-untyped-call]
            return
        for worker in self.wrks:
            pid = getattr(worker.inner, "pid", None)
            if pid is not None:
                os.kill(pid, DRAIN_SIGNAL)
        # Called from a signal handler: the timer thread stops granian later, not this frame.
        self._drain_timer = threading.Timer(self.drain_seconds, super().signal_handler_interrupt)
        self._drain_timer.daemon = True
        self._drain_timer.start()


def load_settings(program: str) -> Settings:
    """Settings from the environment; a bad value prints one line naming it and exits 2."""
    return load_or_exit(program, Settings.read)


def run(service: str, app_path: str) -> None:
    """Serve `module:factory` (`tasks_api.app:create_app`) until SIGTERM, then drain."""
    settings = load_settings(service)
    level = settings.logging.level
    configure_logging(settings.logging, service)
    server = settings.server
    if server.reload:
        # A forked worker inherits the supervisor's imported modules (taskflow_core among them)
        # and would run the old code after a reload; a spawned one imports what is on disk.
        multiprocessing.set_start_method("spawn", force=True)
    granian = DrainingGranian(
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
        workers_kill_timeout=WORKER_STOP_SECONDS,
        reload=server.reload,
        reload_paths=[Path(d) for d in source_dirs(app_path)] if server.reload else None,
    )
    granian.drain_seconds = server.drain_seconds
    # Workers inherit this (fork, and exec keeps ignored signals): a drain notice that comes
    # before a worker's lifespan listens for it must not kill the worker (SIGUSR1's default).
    signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
    granian.serve()


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
