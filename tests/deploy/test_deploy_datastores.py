"""The datastores and monitoring components: PostgreSQL on a PVC with PGDATA in a subdirectory,
non-root with fsGroup; Redis as a bounded LRU cache; Grafana wired to the Prometheus Service and
to the mounted dashboards."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.deploy_model import (
    OVERLAYS,
    Obj,
    find,
    memory_bytes,
    overlay_missing_reason,
    render,
)

WITH_DATASTORES = [o for o in OVERLAYS if o != "prod"]


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


def workload(docs: tuple[Obj, ...], kind: str, name: str) -> tuple[Obj, Obj]:
    obj = find(docs, kind, name)
    assert obj is not None, f"{kind}/{name}"
    spec = obj["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return spec, container


def env_of(container: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_prod_runs_no_datastores() -> None:
    docs = render("prod")
    assert find(docs, "StatefulSet", "postgres") is None
    assert find(docs, "Deployment", "redis") is None


@pytest.mark.parametrize("overlay", WITH_DATASTORES)
def test_postgres_keeps_pgdata_in_a_subdirectory_of_its_claim(overlay: str) -> None:
    docs = rendered(overlay)
    statefulset = find(docs, "StatefulSet", "postgres")
    assert statefulset is not None
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert memory_bytes(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    spec, container = workload(docs, "StatefulSet", "postgres")
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    pgdata = PurePosixPath(env_of(container)["PGDATA"])
    # initdb refuses a non-empty directory; a volume's root may hold lost+found.
    assert pgdata.parent == PurePosixPath(mount["mountPath"])
    security = spec["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert security["fsGroup"] == security["runAsGroup"]


@pytest.mark.parametrize("overlay", WITH_DATASTORES)
def test_redis_is_a_bounded_lru_cache_within_its_limit(overlay: str) -> None:
    _, container = workload(rendered(overlay), "Deployment", "redis")
    args = container["args"]
    settings = dict(zip(args[1::2], args[2::2], strict=False))
    assert settings["--maxmemory"] == "128mb"
    assert settings["--maxmemory-policy"] == "allkeys-lru"
    # maxmemory counts the data only: buffers and fragmentation need room below the limit.
    limit = memory_bytes(container["resources"]["limits"]["memory"])
    assert limit >= 1.5 * 128 * 2**20


@pytest.mark.parametrize("overlay", WITH_DATASTORES)
def test_grafana_reads_prometheus_and_the_mounted_dashboards(overlay: str) -> None:
    docs = rendered(overlay)
    spec, container = workload(docs, "Deployment", "grafana")
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    env = env_of(container)

    def configmap_file(mount_path: str) -> str:
        mount = mounts[mount_path]
        configmap = find(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
        assert configmap is not None
        return str(configmap["data"][mount["subPath"]])

    provisioning = PurePosixPath(env["GF_PATHS_PROVISIONING"])
    (datasources,) = [p for p in mounts if PurePosixPath(p).parent == provisioning / "datasources"]
    (dashboards,) = [p for p in mounts if PurePosixPath(p).parent == provisioning / "dashboards"]

    (source,) = yaml.safe_load(configmap_file(datasources))["datasources"]
    url = urlsplit(source["url"])
    prometheus = find(docs, "Service", url.hostname or "")
    assert prometheus is not None, source["url"]
    assert url.port in {p["port"] for p in prometheus["spec"]["ports"]}

    (provider,) = yaml.safe_load(configmap_file(dashboards))["providers"]
    folder = provider["options"]["path"]
    mount = mounts[folder]
    files = find(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert files is not None
    home = PurePosixPath(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert str(home.parent) == folder
    assert home.name in files["data"]
