"""A loopback stand-in for the Kubernetes API: list + watch of HPAs and Deployments replaying a
recorded watch stream, every call recorded as the RBAC verb it needs, and the faults a real API
server shows a watcher (a dropped connection, `410 Gone`).

The replay follows `position()`: the seconds of the recording that have happened (None: none
yet). A list answers the objects as of now with the latest resourceVersion; a watch from a
resourceVersion sends every later event of its resource as soon as it is due, and ends after
the call's `timeoutSeconds`, like the real server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

HPA_WATCH_2_10_2 = Path(__file__).parent / "data" / "hpa-watch-2-10-2.json"

GROUPS = {"horizontalpodautoscalers": "autoscaling", "deployments": "apps"}
VERSIONS = {"horizontalpodautoscalers": "autoscaling/v2", "deployments": "apps/v1"}
LIST_KINDS = {
    "horizontalpodautoscalers": "HorizontalPodAutoscalerList",
    "deployments": "DeploymentList",
}
HOLD_SECONDS = 60.0  # a watch without timeoutSeconds ends after this
TICK_SECONDS = 0.01  # how often an open watch looks for due events and faults
STUB_TOKEN = "stub-token"  # the bearer token the kubeconfig below carries

Obj = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One request, as RBAC sees it, and what it asked for."""

    method: str
    group: str
    resource: str
    verb: str
    namespace: str | None
    resource_version: str | None
    label_selector: str | None
    authorization: str | None


class ManualClock:
    """A replay position the test moves by hand (`advance_to`); None until the first move."""

    def __init__(self) -> None:
        self.position: float | None = None

    def __call__(self) -> float | None:
        return self.position

    def advance_to(self, seconds: float) -> None:
        self.position = seconds


@dataclass
class StubKube:
    recording: Obj
    position: Callable[[], float | None]
    calls: list[Call] = field(default_factory=list)
    _drops: int = 0  # drop_watches() calls so far; each open watch aborts once it sees a new one
    _ends: int = 0  # expire_history() calls so far; each open watch ends cleanly on a new one
    _gone: dict[str, str] = field(default_factory=dict)  # resource -> "event" or "status"
    _stopping: bool = False

    @classmethod
    def from_file(cls, path: Path, position: Callable[[], float | None]) -> StubKube:
        return cls(json.loads(path.read_text()), position)

    @property
    def namespace(self) -> str:
        return str(self.recording["namespace"])

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_shutdown.append(self._stop)
        return app

    # --- faults the test injects ------------------------------------------------------------

    def drop_watches(self) -> None:
        """Cut every open watch connection without a clean end (a network failure)."""
        self._drops += 1

    def expire_history(self, *, as_status: bool = False) -> None:
        """Compact the history: open watches end, and the next watch of each resource is told
        `410 Gone` — as an ERROR event on a 200 stream, or with `as_status` as HTTP 410."""
        self._gone = dict.fromkeys(GROUPS, "status" if as_status else "event")
        self._ends += 1

    def calls_of(self, verb: str, resource: str) -> list[Call]:
        return [c for c in self.calls if c.verb == verb and c.resource == resource]

    # --- the replay ---------------------------------------------------------------------------

    def _due_events(self) -> list[Obj]:
        position = self.position()
        if position is None:
            return []
        return [e for e in self.recording["events"] if e["at"] <= position]

    def _current(self, resource: str) -> tuple[list[Obj], str]:
        """The objects of `resource` as of now, and the latest resourceVersion of all."""
        objects = {o["metadata"]["name"]: o for o in self.recording["lists"][resource]}
        version = self.recording["resourceVersion"]
        for event in self._due_events():
            version = event["object"]["metadata"]["resourceVersion"]
            if event["resource"] != resource:
                continue
            name = event["object"]["metadata"]["name"]
            if event["type"] == "DELETED":
                objects.pop(name, None)
            else:
                objects[name] = event["object"]
        return list(objects.values()), version

    # --- HTTP ---------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        group, namespace, resource, name = _parse(request.path)
        watching = request.query.get("watch", "").lower() in ("true", "1")
        verb = "watch" if watching else ("get" if name else "list")
        if request.method != "GET":
            verb = request.method.lower()
        self.calls.append(
            Call(
                method=request.method,
                group=group,
                resource=resource,
                verb=verb,
                namespace=namespace,
                resource_version=request.query.get("resourceVersion"),
                label_selector=request.query.get("labelSelector"),
                authorization=request.headers.get("Authorization"),
            )
        )
        known = GROUPS.get(resource) == group and namespace == self.namespace and not name
        if not known or request.method != "GET":
            return _status(404, "NotFound", f"{request.method} {request.path} is not served")
        if watching:
            return await self._watch(request, resource)
        items, version = self._current(resource)
        return web.json_response(
            {
                "apiVersion": VERSIONS[resource],
                "kind": LIST_KINDS[resource],
                "metadata": {"resourceVersion": version},
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, resource: str) -> web.StreamResponse:
        gone = self._gone.pop(resource, None)
        if gone == "status":
            return _status(410, "Expired", "too old resource version")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if gone == "event":
            status = _status_body(410, "Expired", "too old resource version")
            await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            return response
        sent = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or HOLD_SECONDS)
        deadline, drops, ends = (
            time.monotonic() + min(timeout, HOLD_SECONDS),
            self._drops,
            self._ends,
        )
        while time.monotonic() < deadline and not self._stopping and self._ends == ends:
            transport = request.transport
            if transport is None or transport.is_closing():
                return response
            if self._drops != drops:
                transport.abort()
                return response
            for event in self._due_events():
                version = int(event["object"]["metadata"]["resourceVersion"])
                if event["resource"] == resource and version > sent:
                    line = {"type": event["type"], "object": event["object"]}
                    await response.write(json.dumps(line).encode() + b"\n")
                    sent = version
            await asyncio.sleep(TICK_SECONDS)
        return response

    async def _stop(self, _: web.Application) -> None:
        self._stopping = True


def _parse(path: str) -> tuple[str, str | None, str, str | None]:
    """(group, namespace, resource, name) of /api/v1/... or /apis/<group>/<version>/..."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return "", None, path, None
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else None
    return group, namespace, resource, name


def _status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(_status_body(code, reason, message), status=code)


def write_kubeconfig(path: Path, server: str, namespace: str) -> Path:
    """A kubeconfig whose current context reads `server` in `namespace` with STUB_TOKEN."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stub", "cluster": {"server": server}}],
        "users": [{"name": "stub", "user": {"token": STUB_TOKEN}}],
        "contexts": [
            {"name": "stub", "context": {"cluster": "stub", "user": "stub", "namespace": namespace}}
        ],
        "current-context": "stub",
    }
    path.write_text(yaml.safe_dump(config))
    return path
