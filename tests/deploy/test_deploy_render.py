"""Every overlay renders, validates against Kubernetes' schemas, and carries the common labels."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.deploy_model import (
    CLUSTER_SCOPED,
    CNPG_GROUP,
    DEPLOY,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    OVERLAYS,
    Obj,
    find,
    ident,
    load_yaml_documents,
    name_of,
    of_kind,
    overlay_missing_reason,
    pod_template_of,
    pod_templates,
    render,
    render_dir,
)

COMMON_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component")


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_into_the_taskflow_namespace(overlay: str) -> None:
    docs = rendered(overlay)
    assert find(docs, "Namespace", NAMESPACE) is not None
    for obj in docs:
        if obj["kind"] in CLUSTER_SCOPED:
            continue
        assert obj["metadata"].get("namespace") == NAMESPACE, ident(obj)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_carries_the_common_labels(overlay: str) -> None:
    for obj in rendered(overlay):
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "taskflow", ident(obj)
        if obj["kind"] == "Namespace":
            continue
        for key in COMMON_LABELS:
            assert labels.get(key), f"{ident(obj)} lacks {key}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes(overlay: str, version: str) -> None:
    docs = rendered(overlay)
    for obj in docs:
        if obj["apiVersion"].startswith(f"{CNPG_GROUP}/"):
            continue  # a custom resource: its CRD's schema checks it (test_deploy_postgres_ha.py)
        # strict: unknown fields are errors, as with `kubectl apply --validate=strict`.
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_smoke_test_job_is_valid_for_kubernetes(version: str) -> None:
    for obj in load_yaml_documents(DEPLOY / "verify" / "smoke-job.yaml"):
        kubernetes_validate.validate(obj, version, strict=True)


def test_a_schema_violation_is_caught() -> None:
    # The validator really is strict: a misspelt field in a rendered Deployment fails.
    deployment = copy.deepcopy(of_kind(render("dev"), "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_template_carries_its_owners_labels(overlay: str) -> None:
    # Prometheus keeps pods by part-of, policies and PDBs select by name/component: pods need them.
    smoke = pod_template_of(load_yaml_documents(DEPLOY / "verify" / "smoke-job.yaml")[0])
    assert smoke is not None
    for template in [*pod_templates(rendered(overlay)), smoke]:
        owner = template.owner["metadata"]["labels"]
        assert template.labels.get("app.kubernetes.io/part-of") == "taskflow", template.name
        for key in COMMON_LABELS:
            assert template.labels.get(key) == owner.get(key), f"{template.name} {key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_pod_security_restricted(overlay: str) -> None:
    namespace = find(rendered(overlay), "Namespace", NAMESPACE)
    assert namespace is not None
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def _without_identity(obj: Obj) -> str:
    """An object with its per-service name (also its label and image) taken out."""
    return repr(obj).replace(name_of(obj), "<api>")


def _pop_scaling_parts(obj: Obj) -> object:
    """Takes out what only stats-api sets, for GET /scaling: the ServiceAccount token mount (and
    checkov's accepted finding about it), and the api container's memory (the Kubernetes
    client); returns the token mount."""
    if obj["kind"] == "ServiceAccount":
        return obj.pop("automountServiceAccountToken")
    obj["metadata"]["annotations"].pop("checkov.io/skip-CKV_K8S_38", None)
    pod = obj["spec"]["template"]["spec"]
    (api,) = [c for c in pod["containers"] if c["name"] == "api"]
    for bound in ("requests", "limits"):
        api["resources"][bound].pop("memory")
    return pod.pop("automountServiceAccountToken")


def test_both_apis_come_from_one_manifest() -> None:
    # The base writes the API workload once; the two services differ only by their identity,
    # and by what stats-api's GET /scaling needs: a mounted token and memory for the client.
    docs = copy.deepcopy(render("prod"))
    kinds = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    for kind in (*kinds, "ServiceAccount"):
        tasks = find(docs, kind, "tasks-api")
        stats = find(docs, kind, "stats-api")
        assert tasks is not None, kind
        assert stats is not None, kind
        if kind in ("Deployment", "ServiceAccount"):
            assert (_pop_scaling_parts(tasks), _pop_scaling_parts(stats)) == (False, True), kind
        assert _without_identity(tasks) == _without_identity(stats), kind


def test_loadtest_overlay_lists_the_loadgen_component() -> None:
    # Written before the component lands; renders (and is tested above) once it exists.
    kustomization = load_yaml_documents(DEPLOY / "overlays" / "loadtest" / "kustomization.yaml")[0]
    assert "../../components/loadgen" in kustomization["components"]
    assert "../../components/network-policies" in kustomization["components"]


def kustomize_patches() -> list[tuple[str, object]]:
    """(where, parsed patch) of every `patches` entry of every kustomization under deploy/."""
    found: list[tuple[str, object]] = []
    for kustomization in sorted(DEPLOY.rglob("kustomization.yaml")):
        (config,) = load_yaml_documents(kustomization)
        for entry in config.get("patches", []):
            if "path" in entry:
                patch_file = kustomization.parent / entry["path"]
                where = str(patch_file.relative_to(DEPLOY))
                found += [(where, doc) for doc in load_yaml_documents(patch_file)]
            else:
                found.append(
                    (str(kustomization.relative_to(DEPLOY)), yaml.safe_load(entry["patch"]))
                )
    return found


def test_no_json_patch_addresses_a_list_item_by_index() -> None:
    # Strategic-merge patches name their containers and env entries; an index breaks silently
    # when the base reorders its lists.
    patches = kustomize_patches()
    assert patches
    for where, patch in patches:
        if not isinstance(patch, list):
            continue
        for op in patch:
            segments = str(op["path"]).split("/")
            assert not any(s.isdigit() for s in segments), f"{where}: {op['path']}"


def kustomizations_with_labels() -> list[Path]:
    return [
        k
        for k in sorted(DEPLOY.rglob("kustomization.yaml"))
        if "labels" in yaml.safe_load(k.read_text())
    ]


@pytest.mark.parametrize(
    "kustomization", kustomizations_with_labels(), ids=lambda k: str(k.parent.relative_to(DEPLOY))
)
def test_every_labels_block_changes_the_render(kustomization: Path, tmp_path: Path) -> None:
    # A later labels block (a component's reaches everything rendered before it) can make an
    # earlier one a no-op; such a block only says the same thing twice.
    scratch = tmp_path / "deploy"
    shutil.copytree(DEPLOY, scratch)
    edited = scratch / kustomization.relative_to(DEPLOY)
    config = yaml.safe_load(edited.read_text())
    del config["labels"]
    edited.write_text(yaml.safe_dump(config))
    changed = [o for o in OVERLAYS if render_dir(scratch / "overlays" / o) != render(o)]
    assert changed, f"{kustomization.relative_to(DEPLOY)}: its labels block changes no overlay"
