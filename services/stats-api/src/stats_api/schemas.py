"""The bodies of `GET /stats` and `GET /scaling` (msgspec Structs)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class BucketStats(msgspec.Struct, frozen=True):
    total: int
    completed: int


class PriorityStats(msgspec.Struct, frozen=True):
    low: BucketStats
    medium: BucketStats
    high: BucketStats


class Stats(msgspec.Struct, frozen=True):
    total: int
    completed: int
    pending: int
    completion_rate: float  # completed / total, 0 when there are no tasks
    by_priority: PriorityStats


def _described(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class ServiceScaling(msgspec.Struct, frozen=True):
    """One API's autoscaling; each field is null while its source is unknown (docs/api.md)."""

    min_replicas: Annotated[int | None, _described("HPA spec.minReplicas; null without HPA")]
    max_replicas: Annotated[int | None, _described("HPA spec.maxReplicas; null without HPA")]
    current_replicas: Annotated[
        int | None,
        _described("Deployment status.replicas: pods that exist now, ready or not"),
    ]
    desired_replicas: Annotated[
        int | None,
        _described("HPA status.desiredReplicas: the autoscaler's last decision"),
    ]
    ready_replicas: Annotated[
        int | None, _described("Deployment status.readyReplicas: pods passing readiness")
    ]
    cpu_utilization_percent: Annotated[
        int | None,
        _described(
            "CPU use the HPA last measured, as % of the pods' CPU request; null until "
            "metrics are available"
        ),
    ]
    target_cpu_utilization_percent: Annotated[
        int | None, _described("the HPA's CPU target, as % of the pods' CPU request")
    ]


class Scaling(msgspec.Struct, frozen=True):
    """The body of `GET /scaling`."""

    in_cluster: Annotated[
        bool, _described("true when stats-api reads a Kubernetes API (its pod's or KUBECONFIG's)")
    ]
    namespace: Annotated[str | None, _described("the namespace read; null outside a cluster")]
    services: Annotated[
        dict[str, ServiceScaling],
        _described('"tasks-api" and "stats-api" in a cluster; empty outside one'),
    ]
