"""deploy/components/loadgen against the CLI: every variable it sets is read and valid, and the
Job's ports, image and policies agree with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from loadgen.cli import RUN_OPTIONS, build_parser, env_name, resolve, run_config

COMPONENT = Path(__file__).resolve().parents[2] / "deploy" / "components" / "loadgen"


def _docs() -> dict[tuple[str, str], dict[str, Any]]:
    docs = [
        doc
        for path in sorted(COMPONENT.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and "kind" in doc and doc["kind"] != "Component"
    ]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def test_every_configmap_variable_is_a_flag_and_the_whole_set_parses() -> None:
    data = _docs()[("ConfigMap", "loadgen")]["data"]
    known = {env_name(flag) for flag, *_ in RUN_OPTIONS}
    assert set(data) <= known, set(data) - known
    cfg = run_config(resolve(build_parser().parse_args(["run"]), RUN_OPTIONS, data))
    assert (cfg.tasks_url, cfg.stats_url) == ("http://tasks-api:8000", "http://stats-api:8000")
    assert cfg.wait_ready > 0
    assert cfg.observe_after > 0
    assert cfg.report is not None
    assert cfg.report.startswith("/tmp/")
    assert cfg.print_json is True
    # half the load to each API, so both HPAs see it (README: "The default ramp")
    tasks = sum(w for name, w in cfg.mix.items() if name != "stats")
    assert tasks == cfg.mix["stats"]


def test_job_runs_the_image_with_that_config_and_exposes_its_metrics_port() -> None:
    docs = _docs()
    job = docs[("Job", "loadgen")]
    data = docs[("ConfigMap", "loadgen")]["data"]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["parallelism"] == job["spec"]["completions"]
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "loadgen"
    assert container["args"] == ["run"]
    assert container["envFrom"] == [{"configMapRef": {"name": "loadgen"}}]
    (port,) = container["ports"]
    assert port["name"] == "metrics"
    assert str(port["containerPort"]) == data["LOADGEN_METRICS_PORT"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == data["LOADGEN_METRICS_PORT"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(data["LOADGEN_REPORT"]).parent) in mounts  # read-only root: report on tmp
    assert pod["spec"]["serviceAccountName"] == "loadgen"
    binding = docs[("RoleBinding", "loadgen")]
    assert binding["roleRef"]["name"] == "loadgen"
    assert binding["subjects"][0]["name"] == "loadgen"


def test_egress_policy_selects_the_job_pod_and_allows_both_apis_and_dns() -> None:
    docs = _docs()
    policy = docs[("NetworkPolicy", "loadgen-egress")]
    labels = docs[("Job", "loadgen")]["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(labels.get(k) == v for k, v in selector.items())
    ports = {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {("TCP", 8000), ("UDP", 53), ("TCP", 53)}
