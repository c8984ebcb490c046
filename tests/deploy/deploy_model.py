"""Rendered Kubernetes manifests as plain data, and the small queries the deploy tests share."""

from __future__ import annotations

import copy
import functools
import math
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Vendored (source and licence: schemas/README.md), so the check runs offline and in-repo.
SKAFFOLD_SCHEMA = Path(__file__).resolve().parent / "schemas" / "skaffold-v4beta14.json"
OVERLAYS = ("dev", "loadtest", "prod", "ha")
# Where PostgreSQL runs in-cluster: one StatefulSet pod, or a CloudNativePG cluster.
SINGLE_POSTGRES_OVERLAYS = ("dev", "loadtest")
HA_OVERLAYS = ("ha",)
# The CloudNativePG release the ha overlay is written for, and its Cluster CRD (vendored,
# source and licence: schemas/README.md).
CNPG_VERSION = "1.30.0"
CNPG_CLUSTER_CRD = (
    Path(__file__).resolve().parent
    / "schemas"
    / "cnpg"
    / f"postgresql.cnpg.io_clusters-{CNPG_VERSION}.yaml"
)
CNPG_GROUP = "postgresql.cnpg.io"
NAMESPACE = "taskflow"
KUBERNETES_VERSIONS = ("1.31", "1.34")
LOADGEN_COMPONENT = DEPLOY / "components" / "loadgen"

Obj = dict[str, Any]

POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
}


def overlay_missing_reason(overlay: str) -> str | None:
    """Why an overlay cannot render yet (the loadtest overlay needs the loadgen component)."""
    if overlay == "loadtest" and not (LOADGEN_COMPONENT / "kustomization.yaml").exists():
        return "deploy/components/loadgen (the load generator's component) is not in the repo yet"
    return None


@functools.cache
def _render(path: str) -> tuple[Obj, ...]:
    result = subprocess.run(
        ["kubectl", "kustomize", path],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(overlay: str) -> tuple[Obj, ...]:
    """Every object of `deploy/overlays/<overlay>` as `kubectl kustomize` renders it."""
    return _render(str(DEPLOY / "overlays" / overlay))


def render_dir(path: Path) -> tuple[Obj, ...]:
    """Every object of any kustomization directory (a scratch copy of deploy/, say)."""
    return _render(str(path))


def load_yaml_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def ident(obj: Obj) -> str:
    return f"{obj['kind']}/{name_of(obj)}"


def of_kind(docs: tuple[Obj, ...] | list[Obj], kind: str) -> list[Obj]:
    return [doc for doc in docs if doc["kind"] == kind]


def find(docs: tuple[Obj, ...] | list[Obj], kind: str, name: str) -> Obj | None:
    return next((d for d in docs if d["kind"] == kind and name_of(d) == name), None)


@dataclass(frozen=True)
class PodTemplate:
    """The pod a workload creates: its owner, labels and spec."""

    owner: Obj
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: Obj

    @property
    def name(self) -> str:
        return ident(self.owner)

    def containers(self, *, init: bool = True) -> list[Obj]:
        found = list(self.spec.get("containers", []))
        if init:
            found += self.spec.get("initContainers", [])
            found += self.spec.get("ephemeralContainers", [])
        return found

    def replicas_at_most(self, hpas: list[Obj]) -> int:
        """Pods this workload may run at once when its HPA (if any) is at its maximum."""
        for hpa in hpas:
            target = hpa["spec"]["scaleTargetRef"]
            if target["kind"] == self.owner["kind"] and target["name"] == name_of(self.owner):
                return int(hpa["spec"]["maxReplicas"])
        spec = self.owner.get("spec", {})
        if self.owner["kind"] == "Cluster":
            return int(spec.get("instances", 1))
        if self.owner["kind"] == "Job":
            return int(spec.get("parallelism", 1))
        return int(spec.get("replicas", 1))


def pod_template_of(obj: Obj) -> PodTemplate | None:
    kind = obj["kind"]
    if kind == "Pod":
        meta, spec = obj.get("metadata", {}), obj["spec"]
    elif kind == "CronJob":
        template = obj["spec"]["jobTemplate"]["spec"]["template"]
        meta, spec = template.get("metadata", {}), template["spec"]
    elif kind in POD_TEMPLATE_KINDS:
        template = obj["spec"]["template"]
        meta, spec = template.get("metadata", {}), template["spec"]
    else:
        return None
    return PodTemplate(
        owner=obj,
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        spec=spec,
    )


def pod_templates(docs: tuple[Obj, ...] | list[Obj]) -> list[PodTemplate]:
    return [t for t in (pod_template_of(d) for d in docs) if t is not None]


# The ports of an instance pod the operator makes (CloudNativePG docs, "Security"): PostgreSQL,
# the instance manager's status endpoint (operator only) and its metrics exporter.
CNPG_INSTANCE_PORTS = (("postgresql", 5432), ("status", 8000), ("metrics", 9187))


def cluster_instances(docs: tuple[Obj, ...] | list[Obj]) -> list[PodTemplate]:
    """The instance pods each CloudNativePG Cluster makes, as far as the manifests decide them:
    their labels (the operator's plus spec.inheritedMetadata), ports and resources; the operator
    writes the rest of the pod spec, so nothing else is modelled."""
    templates = []
    for cluster in docs:
        if cluster["kind"] != "Cluster" or not cluster["apiVersion"].startswith(CNPG_GROUP):
            continue
        spec = cluster["spec"]
        labels = dict((spec.get("inheritedMetadata") or {}).get("labels") or {})
        labels |= {"cnpg.io/cluster": name_of(cluster), "cnpg.io/podRole": "instance"}
        container = {
            "name": "postgres",
            "ports": [{"name": n, "containerPort": p} for n, p in CNPG_INSTANCE_PORTS],
            "resources": spec.get("resources", {}),
        }
        templates.append(
            PodTemplate(
                owner=cluster, labels=labels, annotations={}, spec={"containers": [container]}
            )
        )
    return templates


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) matches labels."""
    if selector is None:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items()) if selector else True
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def container_ports(container: Obj) -> dict[str | int, int]:
    """A container's ports by name and by number, each mapping to the number."""
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[int(port["containerPort"])] = int(port["containerPort"])
        if "name" in port:
            ports[port["name"]] = int(port["containerPort"])
    return ports


def probes(container: Obj) -> Iterator[tuple[str, Obj]]:
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        if kind in container:
            yield kind, container[kind]


# --- resource quantities -------------------------------------------------------------------

_MEMORY_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def cpu_millis(quantity: str | int | float) -> int:
    text = str(quantity)
    if text.endswith("m"):
        return int(text[:-1])
    return math.ceil(float(text) * 1000)


def memory_bytes(quantity: str | int | float) -> int:
    text = str(quantity)
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match, f"unreadable memory quantity {text!r}"
    number, suffix = match.groups()
    return math.ceil(float(number) * _MEMORY_SUFFIXES.get(suffix, 1))


def pod_requests(template: PodTemplate) -> tuple[int, int]:
    """Effective pod requests (millicores, bytes): max(sum of containers, largest init)."""

    def request(container: Obj, key: str) -> str:
        return str(container.get("resources", {}).get("requests", {}).get(key, "0"))

    app = template.spec.get("containers", [])
    init = template.spec.get("initContainers", [])
    cpu = max(
        sum(cpu_millis(request(c, "cpu")) for c in app),
        max((cpu_millis(request(c, "cpu")) for c in init), default=0),
    )
    memory = max(
        sum(memory_bytes(request(c, "memory")) for c in app),
        max((memory_bytes(request(c, "memory")) for c in init), default=0),
    )
    return cpu, memory


def surge_pods(deployment: Obj, replicas: int) -> int:
    """Extra pods a rolling update may add at `replicas` (percentages round up)."""
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        return 0
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


# --- environment ---------------------------------------------------------------------------


def _external_secret_keys(name: str, overlay: str) -> set[str] | None:
    """Keys of a Secret created outside the repo, as its documented example file lists them."""
    example = DEPLOY / "overlays" / overlay / f"{name}.env.example"
    if not example.exists():
        return None
    keys = set()
    for line in example.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0])
    return keys


def source_keys(docs: tuple[Obj, ...], overlay: str, kind: str, name: str) -> set[str] | None:
    """Keys of a ConfigMap/Secret in the render, else of its documented external example."""
    obj = find(docs, kind, name)
    if obj is not None:
        return set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    if kind == "Secret":
        return _external_secret_keys(name, overlay)
    return None


@dataclass(frozen=True)
class ProvidedEnv:
    names: set[str]
    values: dict[str, str]
    unresolved: list[str]


def provided_env(container: Obj, docs: tuple[Obj, ...], overlay: str) -> ProvidedEnv:
    """Every variable a container gets (env and envFrom), and literal values where known."""
    names: set[str] = set()
    values: dict[str, str] = {}
    unresolved: list[str] = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            kind, ref = "ConfigMap", source["configMapRef"]
        else:
            kind, ref = "Secret", source["secretRef"]
        keys = source_keys(docs, overlay, kind, ref["name"])
        if keys is None:
            if not ref.get("optional", False):
                unresolved.append(f"{kind}/{ref['name']}")
            continue
        prefix = source.get("prefix", "")
        names |= {prefix + key for key in keys}
        obj = find(docs, kind, ref["name"])
        if obj is not None and kind == "ConfigMap":
            values.update({prefix + k: str(v) for k, v in (obj.get("data") or {}).items()})
    for var in container.get("env", []):
        names.add(var["name"])
        if "value" in var:
            values[var["name"]] = str(var["value"])
        else:
            values.pop(var["name"], None)
    return ProvidedEnv(names=names, values=values, unresolved=unresolved)


# --- images --------------------------------------------------------------------------------

EXACT_TAG = re.compile(
    r"^(?P<repo>[^:@]+)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*))?(?:@sha256:[0-9a-f]{64})?$"
)
# Version components that name one exact release: PostgreSQL 10+ is major.minor.
_RELEASE_PARTS = {"postgres": 2}


def exact_third_party_image(image: str) -> bool:
    """A pinned image: a digest, or a tag naming one release (no latest, no bare major)."""
    if "@sha256:" in image:
        return True
    match = EXACT_TAG.match(image)
    if not match or not match.group("tag"):
        return False
    parts = _RELEASE_PARTS.get(match.group("repo").rsplit("/", 1)[-1], 3)
    return (
        re.match(r"^v?\d+" + r"\.\d+" * (parts - 1) + r"(?![.\d])", match.group("tag")) is not None
    )


# --- skaffold ------------------------------------------------------------------------------


def skaffold_config() -> Obj:
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    assert isinstance(config, dict)
    return config


def _overlay(base: Any, over: Any) -> Any:
    """A profile section laid over the main one: maps merge, lists and scalars replace."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _overlay(base.get(k), v) for k, v in over.items()}}
    return copy.deepcopy(over)


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), path
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_json_patch(doc: Obj, operation: Obj) -> Obj:
    """One RFC 6902 operation (add, remove, replace, test), as Skaffold applies a profile's."""
    doc = copy.deepcopy(doc)
    *parents, last = _pointer(operation["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation.get("op", "replace")
    if isinstance(node, list):
        if op == "add":
            node.insert(len(node) if last == "-" else int(last), operation["value"])
            return doc
        index = int(last)
        assert 0 <= index < len(node), operation
    else:
        index = None
        assert op == "add" or last in node, f"{operation['path']} does not exist"
    key: Any = last if index is None else index
    if op in {"add", "replace"}:
        node[key] = operation["value"]
    elif op == "remove":
        del node[key]
    elif op == "test":
        assert node[key] == operation["value"], f"test failed at {operation['path']}"
    else:
        raise AssertionError(f"unsupported patch op {op}")
    return doc


def skaffold_pipeline(profile: str | None) -> Obj:
    """The configuration Skaffold runs with `-p profile`: the profile's sections laid over the
    main ones, then its patches. (Skaffold replaces a oneOf group such as `build.local` whole
    where this merges maps; the profiles here change builds through patches only.)"""
    config = skaffold_config()
    pipeline = {k: v for k, v in config.items() if k != "profiles"}
    if profile is None:
        return pipeline
    prof = next(p for p in config["profiles"] if p["name"] == profile)
    for section, value in prof.items():
        if section not in {"name", "patches", "activation", "requiresAllActivations"}:
            pipeline[section] = _overlay(pipeline.get(section), value)
    for operation in prof.get("patches", []):
        pipeline = apply_json_patch(pipeline, operation)
    return pipeline


def skaffold_artifacts(profile: str | None) -> list[Obj]:
    """Artifacts Skaffold builds with `-p profile`."""
    artifacts: list[Obj] = skaffold_pipeline(profile)["build"]["artifacts"]
    return artifacts


def skaffold_profile_for(overlay: str) -> str | None:
    """The Skaffold profile that renders an overlay (None: the default pipeline)."""
    wanted = [f"deploy/overlays/{overlay}"]
    profiles = [None, *(str(p["name"]) for p in skaffold_config().get("profiles", []))]
    for profile in profiles:
        if skaffold_pipeline(profile)["manifests"]["kustomize"]["paths"] == wanted:
            return profile
    raise AssertionError(f"no Skaffold pipeline renders deploy/overlays/{overlay}")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Skaffold's doublestar glob: `**` spans directories, `*` stays within one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")
