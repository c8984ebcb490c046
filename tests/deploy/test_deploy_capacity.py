"""Budgets: PostgreSQL connections at full scale-out, and requests on the reference laptop node."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.deploy.deploy_model import (
    CNPG_GROUP,
    HA_OVERLAYS,
    OVERLAYS,
    SINGLE_POSTGRES_OVERLAYS,
    Obj,
    cluster_instances,
    find,
    name_of,
    of_kind,
    overlay_missing_reason,
    pod_requests,
    pod_templates,
    provided_env,
    render,
    surge_pods,
)

# Each API pod: its pool (size + overflow) plus the readiness probe's own unpooled connection.
READINESS_CONNECTIONS_PER_POD = 1
# taskflow-migrate holds one connection (the advisory lock is taken on it) while it waits.
MIGRATE_CONNECTIONS_PER_POD = 1
# A person's `alembic upgrade head` / psql over a port-forward, pg_dump, and spare.
ADMIN_HEADROOM = 10
# postgres_exporter beside an in-cluster PostgreSQL holds one connection while it scrapes.
EXPORTER_CONNECTIONS = 1
# The settings' defaults when the environment does not say (taskflow_core.settings).
DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW = 5, 0

# The README's reference laptop node, and what Kubernetes itself requests on it (kind:
# etcd 100m, apiserver 250m, controller-manager 200m, scheduler 100m, 2 x CoreDNS 100m,
# Calico 250m, metrics-server 100m; about 1 GiB of memory in all).
NODE_MILLICORES = 4000
NODE_BYTES = 8 * 2**30
SYSTEM_MILLICORES = 1200
SYSTEM_BYTES = 1 * 2**30
# The CloudNativePG operator's own pod (cnpg-system), requested on the same node wherever the
# ha overlay runs: its Deployment in the release manifest cnpg-1.30.0.yaml.
CNPG_OPERATOR_MILLICORES = 100
CNPG_OPERATOR_BYTES = 100 * 2**20
# Each instance's manager keeps its own connections (status checks, its metrics exporter):
# an allowance, as the operator's documentation gives no figure.
CNPG_MANAGER_CONNECTIONS = 5


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


@dataclass(frozen=True)
class ApiDemand:
    name: str
    pods: int  # maxReplicas + surge
    per_pod: int  # pool + overflow + readiness

    @property
    def serving(self) -> int:
        return self.pods * self.per_pod

    @property
    def migrating(self) -> int:
        # Every pod of a full rollout can sit in Init at once, each holding one connection.
        return self.pods * MIGRATE_CONNECTIONS_PER_POD


def api_demands(docs: tuple[Obj, ...], overlay: str) -> list[ApiDemand]:
    demands = []
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        deployment = find(docs, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert deployment is not None
        max_replicas = int(hpa["spec"]["maxReplicas"])
        pods = max_replicas + surge_pods(deployment, max_replicas)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        values = provided_env(container, docs, overlay).values
        pool = int(values.get("DB_POOL_SIZE", DEFAULT_POOL_SIZE))
        overflow = int(values.get("DB_MAX_OVERFLOW", DEFAULT_MAX_OVERFLOW))
        demands.append(
            ApiDemand(name_of(hpa), pods, pool + overflow + READINESS_CONNECTIONS_PER_POD)
        )
    return demands


def postgres_exporters(docs: tuple[Obj, ...]) -> int:
    postgres = find(docs, "StatefulSet", "postgres")
    if postgres is None:
        return 0
    containers = postgres["spec"]["template"]["spec"]["containers"]
    return sum(1 for c in containers if "postgres-exporter" in c["image"])


def connections_needed(docs: tuple[Obj, ...], overlay: str) -> int:
    demands = api_demands(docs, overlay)
    exporters = postgres_exporters(docs) * EXPORTER_CONNECTIONS
    return sum(d.serving + d.migrating for d in demands) + ADMIN_HEADROOM + exporters


def postgres_setting(statefulset: Obj, name: str, default: int) -> int:
    containers = statefulset["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "postgres"]
    args = " ".join(container.get("args", []))
    match = re.search(rf"\b{name}=(\d+)", args)
    return int(match.group(1)) if match else default


def cnpg_clusters(docs: tuple[Obj, ...]) -> list[Obj]:
    return [d for d in of_kind(docs, "Cluster") if d["apiVersion"].startswith(CNPG_GROUP)]


@pytest.mark.parametrize("overlay", HA_OVERLAYS)
def test_connection_budget_fits_every_cluster_instance(overlay: str) -> None:
    # The operator gives every instance the Cluster's parameters, and any of them may be
    # promoted: each must hold the whole budget on its own, besides its manager's connections.
    docs = rendered(overlay)
    (cluster,) = cnpg_clusters(docs)
    parameters = cluster["spec"]["postgresql"]["parameters"]
    max_connections = int(parameters.get("max_connections", 100))
    reserved = int(parameters.get("superuser_reserved_connections", 3))
    needed = connections_needed(docs, overlay) + CNPG_MANAGER_CONNECTIONS
    assert int(cluster["spec"]["instances"]) == 3
    assert needed <= max_connections - reserved, (
        f"{overlay}: up to {needed} connections, each instance allows {max_connections - reserved}"
    )


@pytest.mark.parametrize("overlay", SINGLE_POSTGRES_OVERLAYS)
def test_connection_budget_fits_max_connections(overlay: str) -> None:
    docs = rendered(overlay)
    postgres = find(docs, "StatefulSet", "postgres")
    assert postgres is not None
    max_connections = postgres_setting(postgres, "max_connections", 100)
    reserved = postgres_setting(postgres, "superuser_reserved_connections", 3)
    needed = connections_needed(docs, overlay)
    assert needed <= max_connections - reserved, (
        f"{overlay}: up to {needed} connections, PostgreSQL allows {max_connections - reserved}"
    )


def test_in_cluster_postgres_is_sized_for_the_production_shape() -> None:
    # The loadtest overlay scales like production; its PostgreSQL must hold that budget too.
    if overlay_missing_reason("loadtest") is None:
        docs = render("loadtest")
        assert {d.pods for d in api_demands(docs, "loadtest")} == {11}
    docs = render("dev")
    postgres = find(docs, "StatefulSet", "postgres")
    assert postgres is not None
    usable = postgres_setting(postgres, "max_connections", 100) - postgres_setting(
        postgres, "superuser_reserved_connections", 3
    )
    assert connections_needed(render("prod"), "prod") <= usable


def test_the_budget_counts_surge_pool_readiness_and_migrations() -> None:
    demands = api_demands(render("prod"), "prod")
    assert {(d.name, d.pods) for d in demands} == {("tasks-api", 11), ("stats-api", 11)}
    # 2 APIs x 11 pods x (4 + 2 + 1) + 2 x 11 migrations + 10 = 186
    assert (
        connections_needed(render("prod"), "prod")
        == sum(d.pods * d.per_pod + d.pods for d in demands) + ADMIN_HEADROOM
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_requests_at_max_replicas_fit_the_reference_node(overlay: str) -> None:
    docs = rendered(overlay)
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    cpu = SYSTEM_MILLICORES
    memory = SYSTEM_BYTES
    if cnpg_clusters(docs):
        cpu += CNPG_OPERATOR_MILLICORES
        memory += CNPG_OPERATOR_BYTES
    for template in [*pod_templates(docs), *cluster_instances(docs)]:
        pods = template.replicas_at_most(hpas)
        pod_cpu, pod_memory = pod_requests(template)
        cpu += pods * pod_cpu
        memory += pods * pod_memory
    assert cpu <= NODE_MILLICORES, (
        f"{overlay}: {cpu}m of CPU requested at max replicas (incl. {SYSTEM_MILLICORES}m for "
        f"Kubernetes itself), over the reference node's {NODE_MILLICORES}m"
    )
    assert memory <= NODE_BYTES, f"{overlay}: {memory / 2**30:.2f} GiB requested at max replicas"


def test_the_in_cluster_budget_counts_the_exporter() -> None:
    # dev and loadtest run postgres_exporter beside PostgreSQL; prod's PostgreSQL is external.
    assert postgres_exporters(render("dev")) == 1
    assert postgres_exporters(render("prod")) == 0


def test_the_node_budget_counts_every_cluster_instance() -> None:
    (instance,) = cluster_instances(render("ha"))
    assert instance.replicas_at_most([]) == 3
    assert pod_requests(instance) == (60, 160 * 2**20)


def test_pod_requests_take_the_larger_of_init_and_app() -> None:
    template = next(t for t in pod_templates(render("prod")) if name_of(t.owner) == "tasks-api")
    app = template.spec["containers"][0]["resources"]["requests"]
    init = template.spec["initContainers"][0]["resources"]["requests"]
    cpu, memory = pod_requests(template)
    assert cpu == max(int(app["cpu"].rstrip("m")), int(init["cpu"].rstrip("m")))
    assert memory > 0
