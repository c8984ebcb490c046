"""The list + watch loop of each resource, as a Kubernetes informer runs it.

List (the objects and a resourceVersion), then watch from that version; a watch the server ends
is resumed from the last version seen, a dropped connection too after a backoff, and
`410 Gone` (the version is too old) lists again. Nothing but `list` and `watch` is called.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import msgspec
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from stats_api.scaling.cluster import Cluster
from stats_api.scaling.objects import SERVICES, Object
from stats_api.scaling.resources import RESOURCES, Resource, Store

WATCH_SECONDS = 290  # the server ends each watch after this; it is resumed at once
WATCH_IDLE_SECONDS = WATCH_SECONDS + 30  # no byte for this long: the connection is dead
LIST_SECONDS = 30
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 15.0
# Only the two APIs' objects, filtered by the API server (the same list and watch verbs).
LABEL_SELECTOR = f"app.kubernetes.io/name in ({','.join(SERVICES)})"
GONE = 410

log = structlog.get_logger("stats_api.scaling")

ListCall = Callable[..., Awaitable[Any]]


async def run(cluster: Cluster, stores: Mapping[Resource, Store]) -> None:
    """Keep every store current until cancelled."""
    log.info("watching HPAs and Deployments", namespace=cluster.namespace, via=cluster.source)
    configuration = await _configuration(cluster)
    async with client.ApiClient(configuration) as api:
        await asyncio.gather(
            *(follow(api, resource, cluster.namespace, stores[resource]) for resource in RESOURCES)
        )


async def follow(api: client.ApiClient, resource: Resource, namespace: str, store: Store) -> None:
    """List, then watch, for as long as the app runs."""
    list_call: ListCall = getattr(getattr(client, resource.api)(api), resource.list_method)
    retry = Backoff()
    while True:
        try:
            if store.version is None:
                await _list(list_call, namespace, store)
                retry.reset()
            await _watch(list_call, namespace, store, retry)
        except ApiException as exc:
            if exc.status == GONE:  # history compacted past our version: list again
                log.info("watch expired, listing again", resource=resource.plural)
                store.version = None
                continue
            log.warning("watch failed", resource=resource.plural, status=exc.status,
                        reason=exc.reason)  # fmt: skip
            await retry.wait()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("watch connection lost", resource=resource.plural,
                        error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            await retry.wait()
        except Exception:  # never let the watch die; the next pass lists again
            log.exception("watch broke", resource=resource.plural)
            store.version = None
            await retry.wait()


async def _list(list_call: ListCall, namespace: str, store: Store) -> None:
    """Replace the store with the objects as of now and the list's resourceVersion."""
    response = await list_call(
        namespace,
        label_selector=LABEL_SELECTOR,
        _preload_content=False,  # raw JSON, as the watch gives it: no typed models needed
        _request_timeout=LIST_SECONDS,
    )
    async with response:
        if response.status != 200:  # the body is a Status, e.g. 403 Forbidden
            raise ApiException(status=response.status, reason=response.reason)
        listing = msgspec.json.decode(await response.read())
    store.objects = {item["metadata"]["name"]: item for item in listing["items"] or []}
    store.version = listing["metadata"]["resourceVersion"]


async def _watch(list_call: ListCall, namespace: str, store: Store, retry: Backoff) -> None:
    """Apply events until the server ends the watch; `store.version` follows each event.

    The raw stream of the list call with watch=true: the client's Watch helper would build a
    TLS context per stream and a typed model per event, neither of which is needed here."""
    response = await list_call(
        namespace,
        watch=True,
        label_selector=LABEL_SELECTOR,
        resource_version=store.version,
        allow_watch_bookmarks=True,
        timeout_seconds=WATCH_SECONDS,
        _preload_content=False,
        _request_timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=WATCH_IDLE_SECONDS),
    )
    async with response:
        if response.status != 200:  # the body is a Status, e.g. 410 Gone or 403 Forbidden
            raise ApiException(status=response.status, reason=response.reason)
        async for line in response.content:
            if line.strip():
                _apply(msgspec.json.decode(line), store)
                retry.reset()


def _apply(event: Object, store: Store) -> None:
    obj: Object = event["object"]
    if event["type"] == "ERROR":  # a Status, e.g. 410: the version was compacted away
        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
    if event["type"] in ("ADDED", "MODIFIED"):
        store.objects[obj["metadata"]["name"]] = obj
    elif event["type"] == "DELETED":
        store.objects.pop(obj["metadata"]["name"], None)
    store.version = obj["metadata"]["resourceVersion"]  # a BOOKMARK moves it too


async def _configuration(cluster: Cluster) -> client.Configuration:
    retry = Backoff()
    while True:
        try:
            return await cluster.configuration()
        except Exception as exc:  # e.g. a kubeconfig exec plugin failing for now: try again
            log.warning("cannot configure the Kubernetes client", error=str(exc))
            await retry.wait()


class Backoff:
    """Exponential delays with jitter, so restarted pods do not reconnect in step."""

    def __init__(self) -> None:
        self._delay = FIRST_RETRY_SECONDS

    def reset(self) -> None:
        self._delay = FIRST_RETRY_SECONDS

    async def wait(self) -> None:
        await asyncio.sleep(self._delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
        self._delay = min(self._delay * 2, MAX_RETRY_SECONDS)
