"""`make up`: PostgreSQL, Redis, migrations with 1000 demo tasks, both APIs and the web entry point
(nginx with the UI, and its metrics exporter) on loopback.

Runs in the foreground; Ctrl-C or SIGTERM stops everything it started, nothing left running.
Every line a child prints is prefixed with its name (`tasks-api | ...`); at a terminal the
children log readable lines instead of JSON (LOG_FORMAT=console, unless LOG_FORMAT is set).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from devstack import labelled
from devstack.servers import LOOPBACK, PostgresServer, RedisServer, stop_process, wait_until
from devstack.web import WebServer

REPO = Path(__file__).resolve().parent.parent
DEMO_TASKS = 1000
DATABASE = "taskflow"


@dataclass(frozen=True)
class Listener:
    """A server `make up` starts on a fixed loopback port that a variable overrides."""

    name: str
    port_variable: str
    default_port: int

    def port(self) -> int:
        raw = os.environ.get(self.port_variable, str(self.default_port))
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise SystemExit(f"{self.port_variable} must be a port number, got {raw!r}")
        return int(raw)


@dataclass(frozen=True)
class Api(Listener):
    module: str


APIS = (
    Api("tasks-api", "TASKS_API_PORT", 8000, "tasks_api"),
    Api("stats-api", "STATS_API_PORT", 8001, "stats_api"),
)
WEB = Listener("web", "WEB_PORT", 8080)
WEB_METRICS = Listener("web metrics exporter", "WEB_METRICS_PORT", 9113)
LISTENERS = (WEB, *APIS, WEB_METRICS)


class Stop(Exception):
    """Raised from the signal handler so every `finally` below runs."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def _check_free(listener: Listener, port: int) -> None:
    with socket.socket() as sock:
        # As the servers bind (SO_REUSEADDR): a port left in TIME_WAIT is free for them too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise SystemExit(
                f"{listener.name}: port {port} on {LOOPBACK} is taken; set {listener.port_variable}"
            ) from None


@contextlib.contextmanager
def _started(server: PostgresServer | RedisServer) -> Iterator[None]:
    try:
        yield
    finally:
        if isinstance(server, RedisServer):
            server.remove()
        else:
            server.stop()


# Set by the person running `make up`: the password its PostgreSQL requires over TCP (unset:
# trust on loopback). It reaches the children only inside DATABASE_URL, and is never printed.
PASSWORD_VARIABLE = "POSTGRES_PASSWORD"  # noqa: S105 (the name of a variable, not a value)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE}
    # The children write into our relay (a pipe): they cannot see that a person is reading.
    if sys.stdout.isatty():
        env.setdefault("LOG_FORMAT", "console")
    return env


def _service_env(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    return {
        **_child_env(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOST": LOOPBACK,
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        # nginx is stopped first and nothing balances over the APIs: no drain window to wait.
        "DRAIN_SECONDS": "0",
    }


def _migrate(database_url: str) -> None:
    env = {**_child_env(), "DATABASE_URL": database_url, "SEED_DEMO_TASKS": str(DEMO_TASKS)}
    command = [sys.executable, "-m", "taskflow_core.migrate_command"]
    labelled.run("migrate", command, env=env, cwd=REPO)


def _start_api(api: Api, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return labelled.spawn(api.name, [sys.executable, "-m", api.module], env=env, cwd=REPO)


def _ready(port: int) -> bool:
    return httpx.get(f"http://{LOOPBACK}:{port}/ready", timeout=1).status_code == 200


def main() -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    ports = {listener.name: listener.port() for listener in LISTENERS}
    for listener in LISTENERS:
        _check_free(listener, ports[listener.name])
    processes: list[subprocess.Popen[bytes]] = []
    web: WebServer | None = None
    postgres = PostgresServer(password=os.environ.get(PASSWORD_VARIABLE))
    redis_server = RedisServer()
    try:
        with _started(postgres), _started(redis_server):
            try:
                postgres.start()
                redis_server.start()
                database_url = postgres.create_database(DATABASE)
                _migrate(database_url)
                for api in APIS:
                    env = _service_env(database_url, redis_server.url, ports[api.name])
                    processes.append(_start_api(api, env))
                for api in APIS:
                    wait_until(lambda port=ports[api.name]: _ready(port), 60, api.name)
                web = WebServer(
                    ports[WEB.name],
                    f"{LOOPBACK}:{ports['tasks-api']}",
                    f"{LOOPBACK}:{ports['stats-api']}",
                    metrics_port=ports[WEB_METRICS.name],
                )
                web.start(spawn=labelled.spawner("web"))
                _print_banner(ports, _shown_database(postgres), redis_server.url)
                while all(process.poll() is None for process in [*processes, *web.processes]):
                    time.sleep(0.5)
                print("up: a service exited; stopping everything", file=sys.stderr)
                return 1
            finally:
                # A second Ctrl-C during cleanup must not leave servers behind.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                if web is not None:
                    web.stop()
                for process in processes:
                    stop_process(process, grace=25)
    except Stop as stop:
        print(f"up: {stop} received; everything stopped", file=sys.stderr)
        return 0


def _shown_database(postgres: PostgresServer) -> str:
    """The database's URL for the banner: never with the password."""
    url = postgres.url(DATABASE, secret=False)
    return f"{url}   (password: ${PASSWORD_VARIABLE})" if postgres.password else url


def _print_banner(ports: dict[str, int], database_url: str, redis_url: str) -> None:
    tasks, stats, web = ports["tasks-api"], ports["stats-api"], ports[WEB.name]
    print(
        "\nTaskFlow is up (Ctrl-C stops everything):\n"
        f"  UI          http://{LOOPBACK}:{web}/   (nginx: /api/tasks, /api/stats, /api/scaling)\n"
        f"  tasks-api   http://{LOOPBACK}:{tasks}/tasks   (OpenAPI: /schema/openapi.json)\n"
        f"  stats-api   http://{LOOPBACK}:{stats}/stats\n"
        f"  PostgreSQL  {database_url}\n"
        f"  Redis       {redis_url}\n"
        f"  web metrics http://{LOOPBACK}:{ports[WEB_METRICS.name]}/metrics   (nginx exporter)\n"
        f"  try: curl 'localhost:{web}/api/tasks?priority=high&completed=false'\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
