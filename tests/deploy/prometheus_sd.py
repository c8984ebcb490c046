"""The shipped prometheus.yml for Debian's Prometheus, which has no Kubernetes service discovery.

Each `kubernetes_sd_configs` becomes `file_sd_configs`, and the target files carry what
Kubernetes pod discovery would: one target per container port of each rendered pod template, with
the same `__meta_kubernetes_*` labels, so the shipped relabelling is what runs. Only addresses
differ: the pod IP is loopback, each manifest port (in the container ports and the
`prometheus.io/port` annotation alike) is mapped to the local process that plays that container,
and Prometheus' scrape of itself names the port it listens on here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.dashboard_model import MONITORING
from tests.deploy.deploy_model import NAMESPACE, Obj, PodTemplate

PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
ALERT_RULES = MONITORING / "alerts.yml"
LOOPBACK = "127.0.0.1"


def sanitize(name: str) -> str:
    """As Prometheus turns a Kubernetes label or annotation name into a label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def file_sd_config(
    config: dict[str, Any], sd_dir: Path, self_address: str | None = None
) -> dict[str, Any]:
    """`config` with every job's Kubernetes discovery replaced by `<sd_dir>/<job>.json` (and
    the self-scrape aimed at `self_address`, when given)."""
    transformed: dict[str, Any] = json.loads(json.dumps(config))
    for job in transformed["scrape_configs"]:
        if job["job_name"] == "prometheus" and self_address is not None:
            job["static_configs"] = [{"targets": [self_address]}]
        if job.pop("kubernetes_sd_configs", None) is not None:
            path = sd_dir / f"{job['job_name']}.json"
            job["file_sd_configs"] = [{"files": [str(path)], "refresh_interval": "5s"}]
    return transformed


def kubernetes_sd_jobs(config: dict[str, Any]) -> list[str]:
    return [j["job_name"] for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]


def pod_targets(
    template: PodTemplate, pod_name: str, ports: dict[int, int]
) -> list[dict[str, Any]]:
    """Target groups Kubernetes pod discovery gives for one pod of `template` (its running
    containers' ports), with manifest ports mapped to local ones by `ports`."""
    pod_labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_ip": LOOPBACK,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
        "__meta_kubernetes_pod_node_name": "reference-node",
    }
    for key, value in template.labels.items():
        pod_labels[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = value
        pod_labels[f"__meta_kubernetes_pod_labelpresent_{sanitize(key)}"] = "true"
    for key, value in template.annotations.items():
        if key == "prometheus.io/port":
            value = str(ports.get(int(value), int(value)))
        pod_labels[f"__meta_kubernetes_pod_annotation_{sanitize(key)}"] = value
        pod_labels[f"__meta_kubernetes_pod_annotationpresent_{sanitize(key)}"] = "true"
    groups = []
    for container in template.containers(init=False):
        for port in container.get("ports", []):
            local = ports.get(port["containerPort"], port["containerPort"])
            groups.append(
                {
                    "targets": [f"{LOOPBACK}:{local}"],
                    "labels": {
                        **pod_labels,
                        "__meta_kubernetes_pod_container_name": container["name"],
                        "__meta_kubernetes_pod_container_image": container["image"],
                        "__meta_kubernetes_pod_container_init": "false",
                        "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_container_port_number": str(local),
                        "__meta_kubernetes_pod_container_port_protocol": port.get(
                            "protocol", "TCP"
                        ),
                    },
                }
            )
    return groups


def write_config(directory: Path, groups: list[Obj], self_address: str | None = None) -> Path:
    """The transformed prometheus.yml, its rules file beside it, and the discovery files (every
    job that used Kubernetes discovery sees the same pods, as in the namespace)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    sd_dir = directory / "sd"
    sd_dir.mkdir(parents=True, exist_ok=True)
    for job in kubernetes_sd_jobs(config):
        (sd_dir / f"{job}.json").write_text(json.dumps(groups, indent=1))
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(file_sd_config(config, sd_dir, self_address), sort_keys=False))
    shutil.copy(ALERT_RULES, directory / ALERT_RULES.name)
    return path
