"""The rendered pods' own commands and environment, run as real processes against real servers.

For each API pod of an overlay with in-cluster datastores, the migrate initContainer's command
and the server (the image's ENTRYPOINT) run with exactly the variables the pod gets — ConfigMap,
generated Secrets, literals and downward-API fields — except the datastore addresses, which point
at this test's PostgreSQL and Redis instead of the cluster's Service names.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from devstack.databases import Postgres
from devstack.servers import LOOPBACK, free_port, stop_process, wait_until
from tests.deploy.deploy_model import REPO, Obj, PodTemplate, find, name_of, pod_templates, render

# dev runs them; loadtest's pods get the same environment but RELOAD (checked statically below).
RUN_OVERLAY = "dev"
SEED = 1000


def container_env(container: Obj, template: PodTemplate, docs: tuple[Obj, ...]) -> dict[str, str]:
    """Every variable the kubelet would set, resolved from the rendered objects."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        ref = source.get("configMapRef") or source["secretRef"]
        obj = find(docs, kind, ref["name"])
        assert obj is not None or ref.get("optional"), f"{kind}/{ref['name']} is not rendered"
        if obj is None:
            continue
        data = obj.get("data") or {}
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        env.update({source.get("prefix", "") + k: str(v) for k, v in data.items()})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        path = var["valueFrom"]["fieldRef"]["fieldPath"]
        match = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
        assert match, f"unsupported fieldRef {path}"
        env[var["name"]] = template.labels[match.group(1)]
    return env


def point_at(env: dict[str, str], database: str, port: int, redis_url: str) -> dict[str, str]:
    """The pod's environment with the datastore addresses swapped for this test's servers."""
    assert env["DATABASE_HOST"] == "postgres", "the Secret names the in-cluster Service"
    pointed = {
        **env,
        "DATABASE_HOST": LOOPBACK,
        "DATABASE_PORT": str(port),
        "DATABASE_NAME": database,
        "DATABASE_USER": "postgres",  # the test server trusts loopback; the password is unused
    }
    if "REDIS_URL" in env:  # the servers' only: migrations never touch Redis
        assert env["REDIS_URL"].startswith("redis://redis:6379"), env["REDIS_URL"]
        pointed["REDIS_URL"] = redis_url
    return pointed


def entrypoint(image: str) -> list[str]:
    """The image's exec-form ENTRYPOINT, with this interpreter standing in for python3."""
    dockerfile = (REPO / "services" / image / "Dockerfile").read_text()
    (line,) = [ln for ln in dockerfile.splitlines() if ln.startswith("ENTRYPOINT")]
    command: list[str] = json.loads(line.removeprefix("ENTRYPOINT").strip())
    return [sys.executable if command[0] == "python3" else command[0], *command[1:]]


def executable(name: str) -> str:
    """A console script as the image's PATH (/opt/venv/bin) would find it: the venv's."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed next to {sys.executable}"
    return found


@pytest.fixture(scope="module")
def database(postgres: Postgres) -> tuple[str, int]:
    url = postgres.create_database("taskflow_manifest")
    name = url.rpartition("/")[2]
    port = int(url.rpartition(":")[2].split("/")[0])
    return name, port


# Loadtest samples a fraction of traces (its patch api-trace-sampling.yaml); dev samples all.
LOADTEST_SAMPLING = {
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.05",
}


def test_loadtest_pods_get_the_dev_environment_without_reload() -> None:
    envs = {}
    for overlay in ("dev", "loadtest"):
        docs = render(overlay)
        for template in pod_templates(docs):
            if template.labels.get("app.kubernetes.io/component") == "api":
                for c in template.containers():
                    env = container_env(c, template, docs)
                    env.pop("RELOAD", None)
                    envs[overlay, name_of(template.owner), c["name"]] = env
    for (overlay, owner, container), env in envs.items():
        if overlay == "loadtest":
            dev = dict(envs["dev", owner, container])
            if container == "api":
                dev |= LOADTEST_SAMPLING
            assert env == dev, (owner, container)


def test_pods_migrate_and_serve_with_their_own_commands_and_environment(
    database: tuple[str, int], redis_url: str
) -> None:
    name, port = database
    docs = render(RUN_OVERLAY)
    apis = [t for t in pod_templates(docs) if t.labels.get("app.kubernetes.io/component") == "api"]
    assert {name_of(t.owner) for t in apis} == {"tasks-api", "stats-api"}
    for template in apis:
        (init,) = template.spec["initContainers"]
        env = point_at(container_env(init, template, docs), name, port, redis_url)
        command = [executable(init["command"][0]), *init["command"][1:], *init.get("args", [])]
        result = subprocess.run(
            command,
            env={"PATH": os.environ["PATH"], **env},
            cwd=REPO,  # the image's WORKDIR /app mirrors the repository
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    dsn = f"postgresql://postgres@{LOOPBACK}:{port}/{name}"
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM tasks").fetchone()
    assert row is not None
    assert row[0] == SEED, "seeded once, whichever pod came first"

    for template in apis:
        (app,) = template.spec["containers"]
        server_port = free_port()
        env = point_at(container_env(app, template, docs), name, port, redis_url)
        env |= {"HOST": LOOPBACK, "PORT": str(server_port)}  # the image's ENV, on loopback
        process = subprocess.Popen(
            entrypoint(app["image"]),
            env={"PATH": os.environ["PATH"], **env},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://{LOOPBACK}:{server_port}"
        try:
            ready = base + app["readinessProbe"]["httpGet"]["path"]
            wait_until(lambda u=ready: httpx.get(u, timeout=2).status_code == 200, 60, ready)
            body = httpx.get(ready, timeout=5).json()
            assert body["cache"] == "ok", body  # REDIS_URL reached the server
            route = "/tasks" if app["image"] == "tasks-api" else "/stats"
            response = httpx.get(base + route, timeout=10)
            assert response.status_code == 200, response.text
        finally:
            stop_process(process)
