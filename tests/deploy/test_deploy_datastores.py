"""The datastores and monitoring components: PostgreSQL on a PVC with PGDATA in a subdirectory,
non-root with fsGroup, its credentials read from files of the Secret; Redis as a bounded LRU
cache; Grafana wired to the Prometheus Service and to the mounted dashboards."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from devstack.servers import PostgresServer, postgres_bindir
from tests.deploy.deploy_model import (
    OVERLAYS,
    SINGLE_POSTGRES_OVERLAYS,
    Obj,
    find,
    memory_bytes,
    overlay_missing_reason,
    render,
)

# The official image's entrypoint (vendored, source and licence: entrypoints/README.md).
POSTGRES_ENTRYPOINT = (
    Path(__file__).resolve().parent / "entrypoints" / "postgres-docker-entrypoint.sh"
)

# In-cluster Redis and monitoring everywhere but prod; the ha overlay's PostgreSQL is the
# operator's (tests/deploy/test_deploy_postgres_ha.py).
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
    # The workload's own container, not the exporter beside it.
    (container,) = [c for c in spec["containers"] if c["name"] == name]
    return spec, container


def env_of(container: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_prod_runs_no_datastores() -> None:
    docs = render("prod")
    assert find(docs, "StatefulSet", "postgres") is None
    assert find(docs, "Deployment", "redis") is None


@pytest.mark.parametrize("overlay", SINGLE_POSTGRES_OVERLAYS)
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

    sources = yaml.safe_load(configmap_file(datasources))["datasources"]
    (source,) = [s for s in sources if s["type"] == "prometheus"]
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


# --- PostgreSQL's credentials: files of the Secret, never environment values -----------------


def secret_files(docs: tuple[Obj, ...], spec: Obj, container: Obj, root: Path) -> dict[str, str]:
    """Lays out the container's Secret volumes under `root` as the kubelet would; returns each
    file's path in the container -> its path here."""
    volumes = {v["name"]: v for v in spec["volumes"]}
    laid_out: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        source = volumes.get(mount["name"], {}).get("secret")  # claims are not in volumes
        if source is None:
            continue
        secret = find(docs, "Secret", source["secretName"])
        assert secret is not None, source["secretName"]
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            here = root / mount["mountPath"].lstrip("/") / item["path"]
            here.parent.mkdir(parents=True, exist_ok=True)
            here.write_text(data[item["key"]])
            laid_out[f"{mount['mountPath']}/{item['path']}"] = str(here)
    return laid_out


def database_secret(docs: tuple[Obj, ...]) -> dict[str, str]:
    (secret,) = [
        d
        for d in docs
        if d["kind"] == "Secret"
        and d["metadata"]["labels"].get("app.kubernetes.io/name") == "taskflow-db"
    ]
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def postgres_env(docs: tuple[Obj, ...], root: Path) -> tuple[Obj, dict[str, str]]:
    """The postgres container and its environment, with its Secret files laid out under `root`."""
    spec, container = workload(docs, "StatefulSet", "postgres")
    files = secret_files(docs, spec, container, root)
    env = {}
    for var in container["env"]:
        assert set(var) == {"name", "value"}, f"{var['name']} is not a literal"
        env[var["name"]] = files.get(var["value"], var["value"])
    return container, env


@pytest.mark.parametrize("overlay", SINGLE_POSTGRES_OVERLAYS)
def test_postgres_gets_no_secret_through_its_environment(overlay: str) -> None:
    _, container = workload(rendered(overlay), "StatefulSet", "postgres")
    assert "envFrom" not in container
    for var in container["env"]:
        assert "secretKeyRef" not in var.get("valueFrom", {}), var["name"]
    names = {var["name"] for var in container["env"]}
    assert not names & {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"}


@pytest.mark.parametrize("overlay", SINGLE_POSTGRES_OVERLAYS)
def test_the_image_entrypoint_reads_the_secret_files(overlay: str, tmp_path: Path) -> None:
    # The image's own docker-entrypoint.sh resolves the *_FILE variables (its file_env) into
    # the credentials initdb and the first start use: exactly the Secret's values.
    docs = rendered(overlay)
    _, env = postgres_env(docs, tmp_path)
    env["PGDATA"] = str(tmp_path / "pgdata")  # empty: no database yet, as on a fresh claim
    script = (
        'source "$1"; docker_setup_env; docker_verify_minimum_env; '
        'printf "%s\\0" "$POSTGRES_USER" "$POSTGRES_DB" "$POSTGRES_PASSWORD"; '
        'env | grep -c "_FILE=" || true'
    )
    result = subprocess.run(
        ["bash", "-c", script, "entrypoint", str(POSTGRES_ENTRYPOINT)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *resolved, unset_files = result.stdout.split("\0")
    secret = database_secret(docs)
    expected = [secret["DATABASE_USER"], secret["DATABASE_NAME"], secret["DATABASE_PASSWORD"]]
    assert resolved == expected
    assert unset_files.strip() == "0", "file_env unsets each *_FILE once read"


@pytest.mark.parametrize("overlay", SINGLE_POSTGRES_OVERLAYS)
def test_postgres_probes_ask_as_the_secret_user_for_its_database(
    overlay: str, tmp_path: Path
) -> None:
    # The probes run in the container, where the credentials are files: run them against a real
    # server that holds the Secret's role and database, and find no failed connection in its log.
    docs = rendered(overlay)
    container, env = postgres_env(docs, tmp_path)
    secret = database_secret(docs)
    server = PostgresServer().start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{secret["DATABASE_USER"]}" LOGIN')
            conn.execute(f'CREATE DATABASE "{secret["DATABASE_NAME"]}"')
        path = f"{postgres_bindir()}:{os.environ['PATH']}"
        for kind in ("startupProbe", "readinessProbe"):
            command = container[kind]["exec"]["command"]
            result = subprocess.run(
                command,
                env={"PATH": path, "PGPORT": str(server.port), **env},
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            assert result.returncode == 0, f"{kind}: {result.stdout}{result.stderr}"
            assert not result.stderr, f"{kind}: {result.stderr}"
        log = server.log.read_text()
        assert "FATAL" not in log, log[-2000:]
    finally:
        server.stop()
