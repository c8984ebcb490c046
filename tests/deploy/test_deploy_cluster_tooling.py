"""`make cluster` (mk/cluster.mk) and its kind configuration, checked with `make -n`."""

from __future__ import annotations

import subprocess

import yaml

from tests.deploy.deploy_model import DEPLOY, REPO


def dry_run(*variables: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "mk/cluster.mk", "cluster", *variables],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cluster_creates_kind_with_an_enforcing_cni_and_metrics_server() -> None:
    plan = dry_run()
    assert "create cluster --name taskflow --config deploy/kind/cluster.yaml" in plan
    assert "projectcalico/calico/v3.29.1/manifests/calico.yaml" in plan
    assert "metrics-server/releases/download/v0.7.2/components.yaml" in plan
    assert "--kubelet-insecure-tls" in plan
    # Calico is installed and running before metrics-server needs pod networking.
    assert plan.index("calico.yaml") < plan.index("rollout status daemonset/calico-node")
    assert plan.index("calico-node") < plan.index("components.yaml")


def test_cluster_variables_override() -> None:
    plan = dry_run("KIND_CLUSTER=lab", "KIND_NODE_IMAGE=kindest/node:v1.32.2")
    assert "create cluster --name lab" in plan
    assert "--image kindest/node:v1.32.2" in plan
    assert "--context kind-lab" in plan


def test_kind_config_leaves_networking_to_calico() -> None:
    config = yaml.safe_load((DEPLOY / "kind" / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster"
    assert config["networking"]["disableDefaultCNI"] is True
    # Calico's default IP pool.
    assert config["networking"]["podSubnet"] == "192.168.0.0/16"


def test_the_ha_kind_config_adds_three_workers_to_the_same_networking() -> None:
    single = yaml.safe_load((DEPLOY / "kind" / "cluster.yaml").read_text())
    ha = yaml.safe_load((DEPLOY / "kind" / "cluster-ha.yaml").read_text())
    assert ha["networking"] == single["networking"]
    assert [n["role"] for n in ha["nodes"]] == ["control-plane", "worker", "worker", "worker"]
    plan = dry_run("KIND_CONFIG=deploy/kind/cluster-ha.yaml")
    assert "--config deploy/kind/cluster-ha.yaml" in plan


def test_cnpg_installs_the_pinned_operator_release_server_side() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "mk/cluster.mk", "cnpg"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "apply --server-side -f " in result.stdout
    assert "cloudnative-pg/release-1.30/releases/cnpg-1.30.0.yaml" in result.stdout
    assert "rollout status deployment/cnpg-controller-manager" in result.stdout
