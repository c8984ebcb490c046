"""ScalingWatcher: what `GET /scaling` answers, from the objects the informer keeps in memory.

Outside a cluster it answers `in_cluster: false` and starts nothing. In one, its lifespan runs
the informer (informer.py) in the background; a request never calls the API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from litestar import Litestar

from stats_api.scaling.cluster import Cluster
from stats_api.scaling.objects import SERVICES, service_scaling
from stats_api.scaling.resources import DEPLOYMENTS, HPAS, RESOURCES, Store
from stats_api.schemas import Scaling


class ScalingWatcher:
    """The `scaling_watcher` dependency of `GET /scaling`; `lifespan` runs the watch."""

    def __init__(self, cluster: Cluster | None) -> None:
        self.cluster = cluster
        self._stores = {resource: Store() for resource in RESOURCES}

    def snapshot(self) -> Scaling:
        if self.cluster is None:
            return Scaling(in_cluster=False, namespace=None, services={})
        hpas, deployments = self._stores[HPAS].objects, self._stores[DEPLOYMENTS].objects
        services = {
            name: service_scaling(hpas.get(name), deployments.get(name)) for name in SERVICES
        }
        return Scaling(in_cluster=True, namespace=self.cluster.namespace, services=services)

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        if self.cluster is None:
            yield
            return
        # Imported at startup, not per request: the Kubernetes client takes seconds to load,
        # and outside a cluster it is never loaded.
        from stats_api.scaling import informer

        task = asyncio.create_task(informer.run(self.cluster, self._stores), name="scaling")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
