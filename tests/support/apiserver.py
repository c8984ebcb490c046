"""Run a TaskFlow API as a real `python -m <service>` process on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from taskflow_core.settings import Settings

from devstack.servers import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # generous: a loaded CI machine imports slowly
STOP_TIMEOUT = 25.0


@dataclass
class ApiServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment: only what the service needs, nothing inherited that it could read."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in {"PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH"}
    }
    # No balancer in front to drain away from: stop at once (tests of the drain set it).
    env.update(
        {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "DRAIN_SECONDS": "0", **extra}
    )
    return env


def spawn_api(module: str, env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`python -m <module>` on a free loopback port, output to a log file: process, port, log."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix=f"{module}-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**env, "HOST": LOOPBACK, "PORT": str(port)},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, port, Path(log.name)


@contextmanager
def api_server(module: str, env: Mapping[str, str]) -> Iterator[ApiServer]:
    process, port, log_path = spawn_api(module, env)
    server = ApiServer(f"http://{LOOPBACK}:{port}", process, log_path)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def _wait_healthy(server: ApiServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server not healthy after {START_TIMEOUT}s:\n{server.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@asynccontextmanager
async def in_process(database_url: str, **env: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """tasks-api built by its factory and driven in-process (own thread and loop, own engine)."""
    from tasks_api.app import create_app

    settings = Settings.from_env({"DATABASE_URL": database_url, **env})
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def create_task(client: AsyncTestClient[Litestar], **fields: Any) -> httpx.Response:
    """POST /tasks with a default title; asserts the 201."""
    response = await client.post("/tasks", json={"title": "a task", **fields})
    assert response.status_code == 201, response.text
    return response
