"""A loopback stand-in for the Kubernetes API: list + watch of HPAs and Deployments, replaying
a recorded watch stream, and recording every call as the RBAC verb it needs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

GROUPS = {"horizontalpodautoscalers": "autoscaling", "deployments": "apps"}
VERSIONS = {"horizontalpodautoscalers": "autoscaling/v2", "deployments": "apps/v1"}
LIST_KINDS = {
    "horizontalpodautoscalers": "HorizontalPodAutoscalerList",
    "deployments": "DeploymentList",
}
HOLD_SECONDS = 30.0  # a watch stays open at most this long after its last event


@dataclass(frozen=True)
class Call:
    method: str
    group: str
    resource: str
    verb: str


@dataclass
class StubKube:
    """Serves `recording`; event offsets count from `origin()` (a monotonic time or None)."""

    recording: dict[str, Any]
    origin: Callable[[], float | None]
    calls: list[Call] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path, origin: Callable[[], float | None]) -> StubKube:
        return cls(json.loads(path.read_text()), origin)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        # /apis/<group>/<version>/namespaces/<ns>/<resource>[/<name>]
        resource = parts[5] if len(parts) >= 6 else ""
        group = parts[1] if len(parts) >= 2 else ""
        watching = request.query.get("watch", "").lower() in ("true", "1")
        verb = "watch" if watching else ("get" if len(parts) > 6 else "list")
        if request.method != "GET":
            verb = request.method.lower()
        self.calls.append(Call(request.method, group, resource, verb))
        known = resource in GROUPS and group == GROUPS[resource] and len(parts) == 6
        if not known or request.method != "GET":
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        if watching:
            return await self._watch(request, resource)
        return web.json_response(
            {
                "apiVersion": VERSIONS[resource],
                "kind": LIST_KINDS[resource],
                "metadata": {"resourceVersion": self.recording["resourceVersion"]},
                "items": self.recording["lists"][resource],
            }
        )

    async def _watch(self, request: web.Request, resource: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        events = [e for e in self.recording["events"] if e["resource"] == resource]
        for event in events:
            start = await self._origin()
            delay = start + event["at"] - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            line = json.dumps({"type": event["type"], "object": event["object"]}) + "\n"
            try:
                await response.write(line.encode())
            except (ConnectionResetError, RuntimeError):
                return response
        deadline = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < deadline:  # hold the watch open until the client leaves
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await asyncio.sleep(0.05)
        return response

    async def _origin(self) -> float:
        for _ in range(600):  # bounded: the first load request comes within 30 s
            value = self.origin()
            if value is not None:
                return value
            await asyncio.sleep(0.05)
        raise TimeoutError("no load request arrived")
