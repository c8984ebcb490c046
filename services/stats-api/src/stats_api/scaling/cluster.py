"""Which Kubernetes API `/scaling` reads, decided once at start from the environment.

- `KUBECONFIG` set: the current context of that kubeconfig (cluster, credentials, namespace;
  no namespace in the context means `default`, as for kubectl). For a workstation, or a
  loopback stand-in of the API.
- otherwise, in a pod (`KUBERNETES_SERVICE_HOST` set and a ServiceAccount token mounted): the
  API server through the pod's ServiceAccount, in the pod's own namespace.
- otherwise none: `/scaling` reports `in_cluster: false`.

An unusable KUBECONFIG stops the process at start (configuration error naming the variable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import yaml
from taskflow_core.settings import ConfigError, Env

# The Kubernetes client takes seconds and 43 MiB to import: loaded only when a cluster is found.
if TYPE_CHECKING:
    from kubernetes_asyncio.client import Configuration

KUBECONFIG = "KUBECONFIG"
SERVICE_HOST = "KUBERNETES_SERVICE_HOST"  # set by the kubelet in every pod
# Where the kubelet mounts the ServiceAccount (the in-cluster client reads token and ca.crt).
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICE_TOKEN = SERVICE_ACCOUNT / "token"
POD_NAMESPACE = SERVICE_ACCOUNT / "namespace"
KUBECONFIG_DEFAULT_NAMESPACE = "default"

log = structlog.get_logger("stats_api.scaling")


@dataclass(frozen=True, slots=True)
class Cluster:
    """A Kubernetes API to read and the namespace to read in."""

    namespace: str
    kubeconfig: str | None  # None: the pod's ServiceAccount

    @property
    def source(self) -> str:
        return "service account" if self.kubeconfig is None else f"KUBECONFIG={self.kubeconfig}"

    async def configuration(self) -> Configuration:
        """The client's configuration; in a pod it re-reads the rotated token every minute."""
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if self.kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(
                config_file=self.kubeconfig,
                client_configuration=configuration,
                persist_config=False,  # never write to the user's kubeconfig
            )
        return configuration


def find_cluster(env: Env) -> Cluster | None:
    """The cluster to read, or None outside one."""
    kubeconfig = env.raw(KUBECONFIG)
    if kubeconfig is not None:
        return Cluster(namespace=_kubeconfig_namespace(kubeconfig), kubeconfig=kubeconfig)
    if env.raw(SERVICE_HOST) is None:
        return None
    if not SERVICE_TOKEN.is_file():
        log.warning(
            "in a pod without a ServiceAccount token: /scaling reports in_cluster false",
            token=str(SERVICE_TOKEN),
        )
        return None
    return Cluster(namespace=_pod_namespace(), kubeconfig=None)


def _kubeconfig_namespace(kubeconfig: str) -> str:
    from kubernetes_asyncio import config

    # Like kubectl, KUBECONFIG may list several files (merged); at least one must exist.
    if not any(Path(p).expanduser().is_file() for p in kubeconfig.split(os.pathsep) if p):
        raise ConfigError(f"{KUBECONFIG}={kubeconfig!r} names no existing file")
    try:
        _, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the parser said
        raise ConfigError(
            f"{KUBECONFIG}={kubeconfig!r} is not a usable kubeconfig: {reason}"
        ) from None
    if not current:
        raise ConfigError(f"{KUBECONFIG}={kubeconfig!r} has no current-context")
    namespace = (current.get("context") or {}).get("namespace")
    return str(namespace or KUBECONFIG_DEFAULT_NAMESPACE)


def _pod_namespace() -> str:
    try:
        namespace = POD_NAMESPACE.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{SERVICE_HOST} is set but {POD_NAMESPACE} is unreadable: {exc}"
        ) from None
    if not namespace:
        raise ConfigError(f"{SERVICE_HOST} is set but {POD_NAMESPACE} is empty")
    return namespace
