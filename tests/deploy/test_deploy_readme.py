"""README.md's Kubernetes sections say what issue 3 asks them to, from the same facts the code has:
how images reach each laptop cluster, Ctrl-C and the volumes, the prod Secrets' keys, the memory
measurement behind a CPU-only HPA, and that no public entry point or authentication ships."""

from __future__ import annotations

import re

from deploy_model import DEPLOY, REPO, pod_templates, render
from taskflow_core.settings import DATABASE_PARTS

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    following = re.search(r"^#{2,4} ", README[start + len(title) :], re.M)
    end = start + len(title) + following.start() if following else len(README)
    return README[start:end]


def test_each_laptop_cluster_says_how_images_get_in() -> None:
    assert "kind load docker-image" in section("#### kind: `make cluster`")
    assert "k3d image import" in section("#### k3d")
    assert "minikube's Docker daemon" in section("#### minikube")


def test_ctrl_c_cleanup_and_the_volumes_are_explained() -> None:
    text = section("### `skaffold dev`")
    assert "**Ctrl-C**" in text
    assert "volumes" in text
    assert "--cleanup=false" in text
    assert "skaffold delete" in text


def test_prod_secrets_list_the_keys_the_settings_read() -> None:
    text = section("### Production: `skaffold run -p prod --default-repo=<registry>`")
    for key in ("DATABASE_URL", *DATABASE_PARTS, "REDIS_URL"):
        assert f"`{key}`" in text, key
    for name in ("taskflow-db", "taskflow-redis"):
        example = DEPLOY / "overlays" / "prod" / f"{name}.env.example"
        assert example.exists(), example
        assert f"`{name}`" in text
    keys = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "overlays" / "prod" / "taskflow-db.env.example")
        .read_text()
        .splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert keys == set(DATABASE_PARTS)


def test_no_public_entry_point_and_no_authentication_are_stated() -> None:
    prod = section("### Production: `skaffold run -p prod --default-repo=<registry>`")
    assert "no public entry point" in prod.lower()
    for path in ("/metrics", "/ready", "/schema"):
        assert f"`{path}`" in prod, path
    assert "Authentication is out of scope" in README


def test_the_memory_measurement_behind_a_cpu_only_hpa_is_in_the_readme() -> None:
    text = section("### Resource figures (measured)")
    assert "**HPA metric: CPU only.**" in text
    assert "15 s after" in text  # the post-load RSS column the decision rests on


def test_the_minimum_kubernetes_version_is_stated() -> None:
    # The preStop `sleep` handler needs 1.30 (PodLifecycleSleepAction on by default).
    uses_sleep = any(
        "sleep" in (c.get("lifecycle", {}).get("preStop") or {})
        for t in pod_templates(render("prod"))
        for c in t.containers()
    )
    assert uses_sleep
    assert "Kubernetes ≥ 1.30" in section("### A laptop cluster")
