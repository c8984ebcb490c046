"""checkov over every rendered overlay, from its own pinned environment (tools/checkov): no failed
check, and exactly the reviewed skips, each an annotation on the resource it concerns naming its
reason (README.md, "Security").

checkov runs once per overlay (its graph checks, such as CKV2_K8S_6's NetworkPolicy coverage,
must see one overlay's objects only), the three runs at once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_model import (
    OVERLAYS,
    POD_TEMPLATE_KINDS,
    REPO,
    Obj,
    ident,
    pod_templates,
    render,
)

CHECKOV_PROJECT = REPO / "tools" / "checkov"
SKIP_PREFIX = "checkov.io/skip"
SKIP_KEY = re.compile(r"^checkov\.io/skip-(?P<check>CKV2?_K8S_\d+)$")

# The reviewed skips: (check, workload) per overlay. Each is an annotation
# `checkov.io/skip-<check>: <check>=<reason>` that the base, component or overlay causing the
# finding puts on that workload; README.md ("Security") lists them. Adding a skip means adding it
# here too. Pod/<name> is checkov's pod of a workload (graph checks), annotated on the workload.
EVERY_OVERLAY = {
    # Bare Skaffold artifact names: Skaffold deploys the image it built (tag@digest when pushed).
    ("CKV_K8S_14", "Deployment/tasks-api"),
    ("CKV_K8S_43", "Deployment/tasks-api"),
    ("CKV_K8S_14", "Deployment/stats-api"),
    ("CKV_K8S_43", "Deployment/stats-api"),
    ("CKV_K8S_14", "Deployment/web"),
    # web's own image as above; its exporter's digest needs a registry to confirm.
    ("CKV_K8S_43", "Deployment/web"),
    # Configuration comes from the environment only: the database Secret arrives through envFrom.
    ("CKV_K8S_35", "Deployment/tasks-api"),
    ("CKV_K8S_35", "Deployment/stats-api"),
    # GET /scaling watches HPAs and Deployments through the API server.
    ("CKV_K8S_38", "Deployment/stats-api"),
}
# Third-party images of the in-cluster datastores and monitoring (dev and loadtest only).
IN_CLUSTER_SERVICES = {
    *(
        (check, workload)
        for workload in (
            "Deployment/grafana",
            "Deployment/prometheus",
            "Deployment/kube-state-metrics",
            "Deployment/redis",
            "StatefulSet/postgres",
        )
        # Exact version tags; digests need registry access, Always would need it at each start.
        for check in ("CKV_K8S_43", "CKV_K8S_15")
    ),
    # The images' own non-root users (472, 999, 999), below checkov's 10000.
    ("CKV_K8S_40", "Deployment/grafana"),
    ("CKV_K8S_40", "Deployment/redis"),
    ("CKV_K8S_40", "StatefulSet/postgres"),
    # Kubernetes service discovery; kube-state-metrics lists the namespace's objects.
    ("CKV_K8S_38", "Deployment/prometheus"),
    ("CKV_K8S_38", "Deployment/kube-state-metrics"),
    # Laptop clusters pull the exporter IfNotPresent (prod: Always).
    ("CKV_K8S_15", "Deployment/web"),
}
# The load generator: a Skaffold artifact, and its HPA timeline reads the API server.
LOADGEN_JOB = {
    ("CKV_K8S_14", "Job/loadgen"),
    ("CKV_K8S_43", "Job/loadgen"),
    ("CKV_K8S_38", "Job/loadgen"),
}
# The tracing component's Jaeger (dev and loadtest): an exact version tag, pulled IfNotPresent.
TRACING = {("CKV_K8S_43", "Deployment/jaeger"), ("CKV_K8S_15", "Deployment/jaeger")}
REVIEWED_SKIPS: dict[str, set[tuple[str, str]]] = {
    "dev": EVERY_OVERLAY
    | IN_CLUSTER_SERVICES
    | TRACING
    | {
        # Skaffold's sync writes into the API and web containers (tar into the root filesystem).
        ("CKV_K8S_22", "Deployment/tasks-api"),
        ("CKV_K8S_22", "Deployment/stats-api"),
        ("CKV_K8S_22", "Deployment/web"),
    },
    "loadtest": EVERY_OVERLAY | IN_CLUSTER_SERVICES | LOADGEN_JOB | TRACING,
    # The loadtest shape; PostgreSQL is the operator's (a Cluster, which checkov does not read).
    # No kube-state-metrics or Jaeger either (their CPU would not fit beside three instances).
    "ha": EVERY_OVERLAY
    | {
        f
        for f in IN_CLUSTER_SERVICES
        if f[1] not in {"StatefulSet/postgres", "Deployment/kube-state-metrics"}
    }
    | LOADGEN_JOB,
    "prod": EVERY_OVERLAY
    | {
        # The policies need the addresses of your database, Redis and Prometheus.
        ("CKV2_K8S_6", "Pod/tasks-api"),
        ("CKV2_K8S_6", "Pod/stats-api"),
        ("CKV2_K8S_6", "Pod/web"),
    },
}


def uv_command() -> list[str]:
    """The uv that runs this session (`uv run` exports it as UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if found:
        return [found]
    return [sys.executable, "-m", "uv"]


def checkov_env() -> dict[str, str]:
    # The workspace's venv is not checkov's: uv would only warn about it.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return {**env, "UV_PYTHON_DOWNLOADS": "never"}


@functools.cache
def checkov_environment() -> list[str]:
    """Installs tools/checkov's locked environment when missing (a no-op when in sync) and
    returns the command that runs its checkov."""
    started = time.monotonic()
    sync = [*uv_command(), "sync", "--project", str(CHECKOV_PROJECT), "--frozen", "--quiet"]
    result = subprocess.run(
        sync, env=checkov_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"checkov environment synced in {time.monotonic() - started:.1f}s")
    return [*uv_command(), "run", "--project", str(CHECKOV_PROJECT), "--frozen", "--no-sync"]


def checkov_args(manifest: Path) -> list[str]:
    # --skip-download: nothing leaves the machine (no guideline or policy download).
    return [
        "checkov",
        "--file", str(manifest),
        "--framework", "kubernetes",
        "--skip-download",
        "--compact",
        "--output", "json",
    ]  # fmt: skip


def run_checkov(manifests: dict[str, Path]) -> dict[str, Obj]:
    """One checkov process per manifest, all at once; each one's JSON report."""
    command = checkov_environment()
    started = time.monotonic()
    runs = {
        name: subprocess.Popen(
            [*command, *checkov_args(path)],
            env=checkov_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in manifests.items()
    }
    reports: dict[str, Obj] = {}
    try:
        for name, run in runs.items():
            stdout, stderr = run.communicate(timeout=280)
            assert run.returncode in (0, 1), f"checkov on {name} crashed:\n{stderr[-3000:]}"
            report = json.loads(stdout)
            # One framework gives one report; a list would mean another framework ran too.
            assert isinstance(report, dict), stdout[:500]
            reports[name] = report
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait(10)
    print(f"checkov over {', '.join(manifests)} in {time.monotonic() - started:.1f}s")
    return reports


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Obj]:
    """checkov's report of each overlay, as `kubectl kustomize` renders it."""
    folder = tmp_path_factory.mktemp("checkov")
    manifests = {}
    for overlay in OVERLAYS:
        path = folder / f"{overlay}.yaml"
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(REPO / "deploy" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        path.write_text(rendered.stdout)
        manifests[overlay] = path
    return run_checkov(manifests)


def workload_of(resource: str) -> str:
    """checkov's resource id (Kind.namespace.name[.labels...]) as Kind/name."""
    kind, _namespace, name = resource.split(".", 3)[:3]
    return f"{kind}/{name}"


def findings(report: Obj, outcome: str) -> set[tuple[str, str]]:
    return {(c["check_id"], workload_of(c["resource"])) for c in report["results"][outcome]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_no_failed_check(overlay: str, checkov_reports: dict[str, Obj]) -> None:
    report = checkov_reports[overlay]
    summary = report["summary"]
    # It really read the overlay: every object, and hundreds of checks passed.
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] >= len(render(overlay)), summary
    assert summary["passed"] > 200, summary
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_skips_exactly_the_reviewed_findings(
    overlay: str, checkov_reports: dict[str, Obj]
) -> None:
    report = checkov_reports[overlay]
    skipped = findings(report, "skipped_checks")
    assert skipped == REVIEWED_SKIPS[overlay], (
        f"not reviewed: {sorted(skipped - REVIEWED_SKIPS[overlay])}; "
        f"reviewed but gone: {sorted(REVIEWED_SKIPS[overlay] - skipped)}"
    )
    # Each carries the reason its workload's annotation gives (a Pod/<name> finding: its owner's).
    reasons = {
        (c, owner.split("/", 1)[1]): r for (c, owner), r in skip_annotations(overlay).items()
    }
    for check in report["results"]["skipped_checks"]:
        name = workload_of(check["resource"]).split("/", 1)[1]
        comment = " ".join(check["check_result"]["suppress_comment"].split())
        assert comment == reasons[check["check_id"], name], (check["check_id"], name)


def skip_annotations(overlay: str) -> dict[tuple[str, str], str]:
    """(check, Kind/name) -> reason of every checkov skip annotation in an overlay's render."""
    found: dict[tuple[str, str], str] = {}
    for obj in render(overlay):
        annotations = obj["metadata"].get("annotations") or {}
        for key, value in annotations.items():
            if SKIP_PREFIX not in key:
                continue
            match = SKIP_KEY.match(key)
            assert match, f"{ident(obj)}: {key} is not checkov.io/skip-<check id>"
            check, _, reason = value.partition("=")
            assert check == match.group("check"), f"{ident(obj)}: {key} skips {check}"
            found[check, ident(obj)] = " ".join(reason.split())
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_skip_is_an_annotation_of_its_workload_with_a_reason(overlay: str) -> None:
    skips = skip_annotations(overlay)
    assert skips
    workloads = {ident(obj) for obj in render(overlay) if obj["kind"] in POD_TEMPLATE_KINDS}
    for (check, owner), reason in skips.items():
        assert owner in workloads, f"{check} on {owner}, which is not a workload"
        # checkov splits the value at "=": a second one would break its parsing.
        assert "=" not in reason, f"{check} on {owner}"
        assert len(reason.split()) >= 8, f"{check} on {owner}: say why ({reason!r})"
    # Never on a pod template: checkov reads the workload's own metadata only, and pods would
    # carry the text for nothing.
    for template in pod_templates(render(overlay)):
        assert not [k for k in template.annotations if SKIP_PREFIX in k], template.name


def test_checkov_is_pinned_in_its_own_locked_environment() -> None:
    project = tomllib.loads((CHECKOV_PROJECT / "pyproject.toml").read_text())
    (requirement,) = project["project"]["dependencies"]
    name, _, version = requirement.partition("==")
    assert name == "checkov", requirement
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), requirement
    lock = tomllib.loads((CHECKOV_PROJECT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"] if "version" in p}
    assert locked["checkov"] == version
    # The workspace's lock knows nothing of it: the two dependency trees never mix.
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "tools/*" in workspace["tool"]["uv"]["workspace"]["exclude"]
    root_lock = tomllib.loads((REPO / "uv.lock").read_text())
    assert "checkov" not in {p["name"] for p in root_lock["package"]}


def test_checkov_version_is_the_pinned_one(checkov_reports: dict[str, Obj]) -> None:
    project = tomllib.loads((CHECKOV_PROJECT / "pyproject.toml").read_text())
    pinned = project["project"]["dependencies"][0].partition("==")[2]
    versions: set[Any] = {r["summary"]["checkov_version"] for r in checkov_reports.values()}
    assert versions == {pinned}
