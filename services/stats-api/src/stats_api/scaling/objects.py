"""What `/scaling` reports for one API, read from its HPA and its Deployment (API JSON dicts).

A field is null when its source is unknown: no such object (yet), or the object does not
report the value (an HPA before its first metrics). Counts the API server omits because they
are zero (`readyReplicas` of a Deployment with no ready pod) read as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stats_api.schemas import ServiceScaling

# The HPAs and Deployments /scaling reports, by name (deploy/base/tasks-api and stats-api).
SERVICES = ("tasks-api", "stats-api")

Object = Mapping[str, Any]


def service_scaling(hpa: Object | None, deployment: Object | None) -> ServiceScaling:
    hpa_spec, hpa_status = _part(hpa, "spec"), _part(hpa, "status")
    deployment_status = _part(deployment, "status")
    present = deployment is not None
    return ServiceScaling(
        # The API server defaults minReplicas to 1; an HPA always has maxReplicas.
        min_replicas=hpa_spec.get("minReplicas", 1) if hpa is not None else None,
        max_replicas=hpa_spec.get("maxReplicas"),
        current_replicas=deployment_status.get("replicas", 0) if present else None,
        desired_replicas=hpa_status.get("desiredReplicas"),
        ready_replicas=deployment_status.get("readyReplicas", 0) if present else None,
        cpu_utilization_percent=_cpu(hpa_status.get("currentMetrics"), "current"),
        target_cpu_utilization_percent=_cpu(hpa_spec.get("metrics"), "target"),
    )


def _part(obj: Object | None, key: str) -> Object:
    return (obj or {}).get(key) or {}


def _cpu(metrics: list[Object] | None, side: str) -> int | None:
    """averageUtilization of the Resource metric `cpu` (spec.metrics, status.currentMetrics)."""
    for metric in metrics or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            value = (resource.get(side) or {}).get("averageUtilization")
            return int(value) if value is not None else None
    return None
