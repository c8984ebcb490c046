"""Read-only watch of the namespace's HPAs and Deployments (list + watch, nothing else)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from loadgen.notice import warn
from loadgen.timeline import Timeline

WATCH_SECONDS = 240  # server-side watch timeout; the loop relists and watches again
MAX_FAILURES = 5

Observe = Callable[[Mapping[str, Any], float], None]


def incluster_configuration() -> client.Configuration:
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def proxy_configuration(url: str) -> client.Configuration:
    """An API server reached without credentials, e.g. `kubectl proxy` from a workstation."""
    return client.Configuration(host=url.rstrip("/"))


class ClusterWatch:
    """Feeds a Timeline from HPA and Deployment watches until cancelled."""

    def __init__(self, configuration: client.Configuration, namespace: str) -> None:
        self.configuration = configuration
        self.namespace = namespace
        self.timeline = Timeline()
        self.synced = asyncio.Event()  # both initial lists are in
        self._listed: set[str] = set()

    async def run(self) -> None:
        async with client.ApiClient(self.configuration) as api:
            hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler
            deployments = client.AppsV1Api(api).list_namespaced_deployment
            await asyncio.gather(
                self._watch(api, "hpa", hpas, self.timeline.observe_hpa),
                self._watch(api, "deployment", deployments, self.timeline.observe_deployment),
            )

    async def _watch(
        self,
        api: client.ApiClient,
        kind: str,
        list_fn: Callable[..., Awaitable[Any]],
        observe: Observe,
    ) -> None:
        failures = 0
        while failures < MAX_FAILURES:
            try:
                await self._list_and_watch(api, kind, list_fn, observe)
                failures = 0
            except ApiException as exc:
                if exc.status == 410:  # resource version too old: relist
                    continue
                failures = MAX_FAILURES if exc.status in (401, 403) else failures + 1
                warn(f"{kind} watch: HTTP {exc.status} {exc.reason}")
            except (OSError, TimeoutError, ValueError, aiohttp.ClientError) as exc:
                failures += 1
                warn(f"{kind} watch: {type(exc).__name__}: {exc}")
            await asyncio.sleep(min(2**failures, 10) if failures else 0)
        warn(f"{kind} watch: giving up; the report's HPA timeline may be incomplete")
        self._mark_listed(kind)

    async def _list_and_watch(
        self,
        api: client.ApiClient,
        kind: str,
        list_fn: Callable[..., Awaitable[Any]],
        observe: Observe,
    ) -> None:
        listing = await list_fn(self.namespace)
        now = time.time()
        for item in listing.items:
            observe(api.sanitize_for_serialization(item), now)
        self._mark_listed(kind)
        stream = watch.Watch().stream(
            list_fn,
            self.namespace,
            resource_version=listing.metadata.resource_version,
            timeout_seconds=WATCH_SECONDS,
        )
        async with stream:
            async for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    observe(event["raw_object"], time.time())

    def _mark_listed(self, kind: str) -> None:
        self._listed.add(kind)
        if self._listed >= {"hpa", "deployment"}:
            self.synced.set()
