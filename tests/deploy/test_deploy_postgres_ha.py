"""The ha overlay's CloudNativePG cluster: every operator object valid against the pinned CRD's
schema (kubernetes-validate knows no custom resources), the shape the README promises (three
instances, one synchronous standby, preferred anti-affinity, the operator's PDBs), and the APIs
and their migrate initContainers reaching the primary through the -rw Service."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.deploy_model import (
    CNPG_CLUSTER_CRD,
    CNPG_GROUP,
    CNPG_VERSION,
    HA_OVERLAYS,
    OVERLAYS,
    REPO,
    Obj,
    find,
    name_of,
    of_kind,
    overlay_missing_reason,
    pod_templates,
    render,
)


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


def strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields rejected, as `kubectl apply --validate=strict` does
    (the API server prunes them otherwise): objects that list their properties get
    additionalProperties false unless marked to keep unknown fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:
        # A map of field names to schemas, not a schema itself.
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    return out


def cluster_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(CNPG_CLUSTER_CRD.read_text())
    assert crd["metadata"]["name"] == f"clusters.{CNPG_GROUP}"
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    assert version["name"] == "v1"
    schema = strict(version["schema"]["openAPIV3Schema"])
    # metadata is the API server's: the CRD leaves it open, Kubernetes' own schema applies.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def cnpg_objects(docs: tuple[Obj, ...]) -> list[Obj]:
    return [d for d in docs if d["apiVersion"].startswith(f"{CNPG_GROUP}/")]


def the_cluster(docs: tuple[Obj, ...]) -> Obj:
    (cluster,) = [d for d in cnpg_objects(docs) if d["kind"] == "Cluster"]
    return cluster


def secret_data(docs: tuple[Obj, ...], label_name: str) -> dict[str, str]:
    (secret,) = [
        d
        for d in of_kind(docs, "Secret")
        if d["metadata"]["labels"].get("app.kubernetes.io/name") == label_name
        and d.get("type", "Opaque") == "Opaque"
    ]
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_operator_object_is_valid_against_the_pinned_crd(overlay: str) -> None:
    objects = cnpg_objects(rendered(overlay))
    assert bool(objects) == (overlay in HA_OVERLAYS)
    validator = cluster_validator()
    for obj in objects:
        # Only Clusters ship; another kind would need its CRD vendored beside this one.
        assert (obj["apiVersion"], obj["kind"]) == (f"{CNPG_GROUP}/v1", "Cluster")
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]
        assert not errors, f"Cluster/{name_of(obj)}: {errors}"


def test_a_cluster_schema_violation_is_caught() -> None:
    validator = cluster_validator()
    cluster = copy.deepcopy(the_cluster(render("ha")))
    assert validator.is_valid(cluster)
    misspelt = copy.deepcopy(cluster)
    misspelt["spec"]["instance"] = misspelt["spec"].pop("instances")
    wrong_type = copy.deepcopy(cluster)
    wrong_type["spec"]["postgresql"]["synchronous"]["method"] = "all"
    for bad in (misspelt, wrong_type):
        assert not validator.is_valid(bad)


def test_the_vendored_crd_is_the_pinned_release() -> None:
    readme = (CNPG_CLUSTER_CRD.parent.parent / "README.md").read_text()
    digest = hashlib.sha256(CNPG_CLUSTER_CRD.read_bytes()).hexdigest()
    assert f"`{digest}`" in readme, "schemas/README.md records the CRD's SHA-256"
    assert f"v{CNPG_VERSION}" in readme
    # The operator the README and `make cnpg` install is the same release.
    cluster_mk = (REPO / "mk" / "cluster.mk").read_text()
    assert re.search(rf"^CNPG_VERSION \?= {re.escape(CNPG_VERSION)}$", cluster_mk, re.M)
    assert f"cnpg-{CNPG_VERSION}.yaml" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("overlay", HA_OVERLAYS)
def test_the_cluster_survives_the_loss_of_its_primary(overlay: str) -> None:
    docs = rendered(overlay)
    spec = the_cluster(docs)["spec"]
    assert spec["instances"] == 3
    # A commit waits for one standby: an acknowledged write is on two instances.
    assert spec["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
    }
    affinity = spec["affinity"]
    assert affinity["enablePodAntiAffinity"] is True
    assert affinity["topologyKey"] == "kubernetes.io/hostname"
    assert affinity["podAntiAffinityType"] == "preferred", "a one-node cluster still schedules"
    assert spec.get("enablePDB", True) is True, "the operator's own PDBs"
    # The operator makes the PDBs; one of ours selecting its pods would block every drain.
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        labels = pdb["spec"]["selector"].get("matchLabels", {})
        assert labels.get("app.kubernetes.io/name") != "postgres", name_of(pdb)
    requests = spec["resources"]["requests"]
    assert requests["cpu"]
    assert requests["memory"]


@pytest.mark.parametrize("overlay", HA_OVERLAYS)
def test_the_same_postgresql_major_as_the_single_instance(overlay: str) -> None:
    image = the_cluster(rendered(overlay))["spec"]["imageName"]
    single = find(render("dev"), "StatefulSet", "postgres")
    assert single is not None
    (container,) = [
        c for c in single["spec"]["template"]["spec"]["containers"] if c["name"] == "postgres"
    ]
    major = re.fullmatch(r"postgres:(\d+)\.\d+-\w+", container["image"])
    assert major is not None
    assert re.fullmatch(
        rf"ghcr\.io/cloudnative-pg/postgresql:{major.group(1)}\.\d+-[a-z]+-[a-z]+", image
    ), "an exact minor, as the operator's image catalogue tags it"


@pytest.mark.parametrize("overlay", HA_OVERLAYS)
def test_apis_and_migrations_reach_the_primary_through_the_rw_service(overlay: str) -> None:
    # Session advisory locks and writes live on the primary only: the migrate initContainers
    # and the servers connect to <cluster>-rw, which follows the primary through a failover.
    docs = rendered(overlay)
    cluster = the_cluster(docs)
    database = secret_data(docs, "taskflow-db")
    assert database["DATABASE_HOST"] == f"{name_of(cluster)}-rw"
    assert database["DATABASE_PORT"] == "5432"
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert (initdb["database"], initdb["owner"]) == (
        database["DATABASE_NAME"],
        database["DATABASE_USER"],
    )
    owner = find(docs, "Secret", initdb["secret"]["name"])
    assert owner is not None
    assert owner["type"] == "kubernetes.io/basic-auth"
    credentials = {k: base64.b64decode(v).decode() for k, v in owner["data"].items()}
    assert credentials == {
        "username": database["DATABASE_USER"],
        "password": database["DATABASE_PASSWORD"],
    }
    (secret,) = [
        d
        for d in of_kind(docs, "Secret")
        if d["metadata"]["labels"].get("app.kubernetes.io/name") == "taskflow-db"
    ]
    apis = [t for t in pod_templates(docs) if t.labels.get("app.kubernetes.io/component") == "api"]
    assert {name_of(t.owner) for t in apis} == {"tasks-api", "stats-api"}
    for template in apis:
        for container in template.containers():
            refs = {
                s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s
            }
            assert name_of(secret) in refs, f"{template.name}/{container['name']}"
    # Nothing in the overlay still names the single PostgreSQL's Service.
    assert find(docs, "Service", "postgres") is None
    assert find(docs, "StatefulSet", "postgres") is None


@pytest.mark.parametrize("overlay", HA_OVERLAYS)
def test_redis_stays_one_cache_instance(overlay: str) -> None:
    # README.md, "High availability": no Sentinel. Redis holds nothing that is not in
    # PostgreSQL, both APIs answer from PostgreSQL while it is away
    # (tests/core/test_cache_consistency.py, test_redis_outage_both_apis_answer_from_postgres_...)
    # and a fresh instance never serves a stale entry (generation keys).
    docs = rendered(overlay)
    redis = [
        t
        for t in pod_templates(docs)
        if any("redis" in str(c.get("image", "")) for c in t.containers())
    ]
    assert [t.name for t in redis] == ["Deployment/redis"]
    (template,) = redis
    assert template.owner["spec"]["replicas"] == 1
    # Redis itself, not the exporter beside it.
    (container,) = [c for c in template.containers() if c["name"] == "redis"]
    args = container["args"]
    assert "sentinel" not in " ".join(args)
    assert args[args.index("--appendonly") + 1] == "no", "a cache: nothing to persist"
    # Nothing holds a single pod against a drain: it is rescheduled, and the APIs carry on.
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert pdb["spec"]["selector"].get("matchLabels", {}).get("app.kubernetes.io/name") != (
            "redis"
        )
    assert secret_data(docs, "taskflow-redis")["REDIS_URL"].startswith("redis://redis:6379/")
