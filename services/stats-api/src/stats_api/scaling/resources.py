"""What `/scaling` watches: two resources of the namespace, each kept in a Store.

The RBAC apiGroup and resource of each, and the only verbs called on them: the Role in
deploy/base/stats-api/rbac.yaml grants exactly these (tests/deploy checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stats_api.scaling.objects import Object


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # RBAC apiGroup
    plural: str  # RBAC resource
    api: str  # the kubernetes_asyncio API class and its list call (the watch uses it too)
    list_method: str


HPAS = Resource(
    "autoscaling",
    "horizontalpodautoscalers",
    api="AutoscalingV2Api",
    list_method="list_namespaced_horizontal_pod_autoscaler",
)
DEPLOYMENTS = Resource(
    "apps", "deployments", api="AppsV1Api", list_method="list_namespaced_deployment"
)
RESOURCES = (HPAS, DEPLOYMENTS)
VERBS = ("list", "watch")


@dataclass
class Store:
    """The latest objects of one resource by name, and the resourceVersion they are at."""

    objects: dict[str, Object] = field(default_factory=dict)
    version: str | None = None  # None: list before watching
