"""A loopback stand-in for both TaskFlow APIs (aiohttp), with an optional stall window."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class StubApi:
    """Answers the routes the loadgen uses; counts what it served; can hold responses."""

    stall_from: float | None = None  # seconds after the first load request
    stall_until: float | None = None
    first_request: float | None = None  # monotonic
    first_request_unix: float | None = None  # wall clock, comparable with the report's times
    tasks: dict[int, bool] = field(default_factory=dict)
    served: list[tuple[str, str, int]] = field(default_factory=list)
    traceparents: list[str] = field(default_factory=list)  # as received, in order
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    cut_first_create: bool = False  # cut the connection of each key's first create, unanswered
    create_keys: list[str | None] = field(default_factory=list)  # Idempotency-Key of each

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._stall])
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._health)
        app.router.add_get("/tasks", self._list)
        app.router.add_post("/tasks", self._create)
        app.router.add_patch("/tasks/{id}", self._complete)
        app.router.add_delete("/tasks/{id}", self._delete)
        app.router.add_get("/stats", self._stats)
        return app

    @web.middleware
    async def _stall(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.monotonic()
        if request.path not in ("/health", "/ready"):
            if self.first_request is None:
                self.first_request, self.first_request_unix = now, time.time()
            if self.stall_from is not None and self.stall_until is not None:
                start = self.first_request + self.stall_from
                end = self.first_request + self.stall_until
                if start <= now < end:
                    await asyncio.sleep(end - now)  # hold every response of the window
        if "traceparent" in request.headers:
            self.traceparents.append(request.headers["traceparent"])
        response = await handler(request)
        self.served.append((request.method, request.path_qs, response.status))
        return response

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response({"items": [], "next_cursor": None})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key")
        first_time = key not in self.create_keys
        self.create_keys.append(key)
        if self.cut_first_create and first_time and request.transport is not None:
            request.transport.abort()  # as a server killed mid-request: no answer at all
            raise asyncio.CancelledError
        task_id = next(self.ids)
        self.tasks[task_id] = False
        return web.json_response({"id": task_id, "title": body["title"]}, status=201)

    async def _complete(self, request: web.Request) -> web.Response:
        task_id = int(request.match_info["id"])
        if task_id not in self.tasks:
            return web.json_response({"status": 404}, status=404)
        self.tasks[task_id] = (await request.json())["completed"]
        return web.json_response({"id": task_id, "completed": self.tasks[task_id]})

    async def _delete(self, request: web.Request) -> web.Response:
        if self.tasks.pop(int(request.match_info["id"]), None) is None:
            return web.json_response({"status": 404}, status=404)
        return web.Response(status=204)

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response({"total": len(self.tasks)})


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def run_loadgen(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> Finished:
    """`python -m loadgen ...` as a real process, with no LOADGEN_* variable inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    clean.pop("KUBERNETES_SERVICE_HOST", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadgen",
        *args,
        env={**clean, **(env or {})},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
