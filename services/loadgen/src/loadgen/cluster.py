"""Where the HPA timeline comes from: detected without importing the Kubernetes client."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from loadgen.notice import warn

if TYPE_CHECKING:
    from kubernetes_asyncio.client import Configuration

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster(environ: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR) -> bool:
    """A pod with a service-account token: the HPA timeline is possible."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and (sa_dir / "token").is_file()


def pod_namespace(sa_dir: Path = SERVICE_ACCOUNT_DIR, default: str = "taskflow") -> str:
    try:
        return (sa_dir / "namespace").read_text(encoding="utf-8").strip() or default
    except OSError:
        return default


def cluster_target(
    kube_api: str | None, namespace: str | None, environ: Mapping[str, str]
) -> tuple[Configuration | None, str]:
    """Where to watch the HPAs: --kube-api, else the pod's service account, else nowhere."""
    if not kube_api and not in_cluster(environ):
        warn("not in a Kubernetes cluster (no service account); no HPA timeline, carrying on")
        return None, namespace or "taskflow"
    from kubernetes_asyncio.config import ConfigException  # slow import: only when needed

    from loadgen import kube

    if kube_api:
        return kube.proxy_configuration(kube_api), namespace or "taskflow"
    try:
        configuration = kube.incluster_configuration()
    except ConfigException as exc:
        warn(f"in-cluster configuration failed ({exc}); no HPA timeline, carrying on")
        return None, namespace or pod_namespace()
    return configuration, namespace or pod_namespace()
