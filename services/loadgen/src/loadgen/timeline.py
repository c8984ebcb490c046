"""Replicas and CPU utilisation over time per autoscaled service, and the lab's timing answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class ServiceState:
    """Latest view of one HPA-scaled Deployment, merged from HPA and Deployment objects."""

    hpa: str | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    desired: int | None = None  # HPA status.desiredReplicas: the autoscaler's decision
    current: int | None = None  # HPA status.currentReplicas
    ready: int | None = None  # Deployment status.readyReplicas
    cpu_utilization: int | None = None  # HPA currentMetrics cpu averageUtilization (% of request)


class Timeline:
    """Fed with HPA and Deployment objects (API JSON dicts) as they change; answers questions."""

    def __init__(self) -> None:
        self.states: dict[str, ServiceState] = {}
        self.points: dict[str, list[dict[str, Any]]] = {}

    def observe_hpa(self, obj: Mapping[str, Any], at: float) -> None:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind", "Deployment") != "Deployment" or "name" not in target:
            return
        state = self.states.setdefault(target["name"], ServiceState())
        state.hpa = obj["metadata"]["name"]
        state.min_replicas = spec.get("minReplicas", 1)
        state.max_replicas = spec.get("maxReplicas")
        state.desired = status.get("desiredReplicas")
        state.current = status.get("currentReplicas")
        state.cpu_utilization = _cpu_utilization(status.get("currentMetrics") or [])
        self._append(target["name"], state, at)

    def observe_deployment(self, obj: Mapping[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        state = self.states.setdefault(name, ServiceState())
        state.ready = (obj.get("status") or {}).get("readyReplicas", 0)
        self._append(name, state, at)

    def _append(self, name: str, state: ServiceState, at: float) -> None:
        point = {
            "desired": state.desired,
            "current": state.current,
            "ready": state.ready,
            "cpu_utilization": state.cpu_utilization,
        }
        points = self.points.setdefault(name, [])
        if not points or {k: v for k, v in points[-1].items() if k != "at"} != point:
            points.append({"at": at, **point})

    def autoscaled(self) -> dict[str, ServiceState]:
        return {name: state for name, state in self.states.items() if state.hpa is not None}

    def summary(self, namespace: str, load_start: float, load_end: float) -> dict[str, Any]:
        """Per service: replicas over time (t in s from load start) and the timing answers."""
        services = {
            name: _service_summary(state, self.points.get(name, []), load_start, load_end)
            for name, state in sorted(self.autoscaled().items())
        }
        return {
            "namespace": namespace,
            "load_duration_s": load_end - load_start,
            "services": services,
        }


def _cpu_utilization(metrics: list[Mapping[str, Any]]) -> int | None:
    for metric in metrics:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            value = (resource.get("current") or {}).get("averageUtilization")
            return int(value) if value is not None else None
    return None


def _service_summary(
    state: ServiceState, points: list[dict[str, Any]], load_start: float, load_end: float
) -> dict[str, Any]:
    series = [{"t": round(p["at"] - load_start, 3), **_without(p, "at")} for p in points]
    known = [p for p in series if p["desired"] is not None]
    during = [p for p in known if p["t"] >= 0]  # from load start to the end of watching
    before = [p for p in known if p["t"] <= 0]
    start = before[-1]["desired"] if before else (during[0]["desired"] if during else None)
    max_r, min_r = state.max_replicas, state.min_replicas
    scale_up = _first(during, lambda p: start is not None and p["desired"] > start)
    at_max = _first(during, lambda p: max_r is not None and p["desired"] >= max_r)
    ready_max = _first(during, lambda p: max_r is not None and (p["ready"] or 0) >= max_r)
    cpus = [p["cpu_utilization"] for p in during if p["cpu_utilization"] is not None]
    return {
        **_without(asdict(state), "desired", "current", "ready", "cpu_utilization"),
        "replicas_at_start": start,
        "peak_replicas": max((p["desired"] for p in during), default=None),
        "peak_cpu_utilization": max(cpus, default=None),
        "first_scale_up_s": scale_up["t"] if scale_up else None,
        "cpu_utilization_at_first_scale_up": scale_up["cpu_utilization"] if scale_up else None,
        "max_replicas_reached_s": at_max["t"] if at_max else None,
        "max_replicas_ready_s": ready_max["t"] if ready_max else None,
        "back_to_min_s": _back_to_min(known, min_r, load_end - load_start),
        "series": series,
    }


def _back_to_min(points: list[dict[str, Any]], min_r: int | None, end: float) -> float | None:
    """Seconds from load end until the decision is back at minReplicas (0 if it already was)."""
    if min_r is None:
        return None
    at_end = [p for p in points if p["t"] <= end]
    if at_end and at_end[-1]["desired"] <= min_r:
        return 0.0
    back = _first([p for p in points if p["t"] > end], lambda p: p["desired"] <= min_r)
    return round(back["t"] - end, 3) if back else None


def _first(points: list[dict[str, Any]], test: Any) -> dict[str, Any] | None:
    return next((p for p in points if test(p)), None)


def _without(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}
