"""The shipped Prometheus configuration and alerting rules under Debian's promtool (2.42).

`promtool check config` reads prometheus.yml with only its Kubernetes discovery swapped for file
discovery (Debian's build has none; tests/deploy/prometheus_sd.py), `promtool check rules` the
rules, and `promtool test rules` (tests/deploy/prometheus/alerts.test.yml) fires every alert on
a synthetic series and keeps it silent on a healthy one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_model import find, name_of, pod_templates, render
from tests.deploy.prometheus_sd import (
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    kubernetes_sd_jobs,
    pod_targets,
    write_config,
)

RULE_TESTS = Path(__file__).resolve().parent / "prometheus" / "alerts.test.yml"
LOADGEN_CLI = Path(__file__).resolve().parents[2] / "services/loadgen/src/loadgen/cli.py"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool: Debian's prometheus package (make test installs it)"
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_promtool_checks_the_shipped_config_with_file_discovery(tmp_path: Path) -> None:
    templates = pod_templates(render("loadtest"))
    groups = [g for t in templates for g in pod_targets(t, f"{name_of(t.owner)}-0", {})]
    config = write_config(tmp_path, groups)
    done = run_promtool("check", "config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    # Only the discovery changed: the same jobs, relabelling and rule files.
    shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    checked = yaml.safe_load(config.read_text())
    assert kubernetes_sd_jobs(shipped) == ["taskflow-pods", "kube-state-metrics"]
    for before, after in zip(shipped["scrape_configs"], checked["scrape_configs"], strict=True):
        before.pop("kubernetes_sd_configs", None)
        after.pop("file_sd_configs", None)
        assert before == after
    assert checked["rule_files"] == shipped["rule_files"] == [ALERT_RULES.name]


def test_the_rules_file_is_mounted_beside_the_config() -> None:
    docs = render("dev")
    deployment = find(docs, "Deployment", "prometheus")
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (config_mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert f"--config.file={config_mount['mountPath']}/prometheus.yml" in container["args"]
    configmaps = [
        d for d in docs if d["kind"] == "ConfigMap" and name_of(d).startswith("prometheus-config-")
    ]
    (configmap,) = configmaps
    assert configmap["data"][ALERT_RULES.name] == ALERT_RULES.read_text()


def test_promtool_checks_the_rules() -> None:
    done = run_promtool("check", "rules", str(ALERT_RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_fire_and_silence_every_alert() -> None:
    done = run_promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    for alert in rules():
        cases = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in cases), f"{alert} never fires in a test"
        assert any(not c["exp_alerts"] for c in cases), f"{alert} is never checked silent"
        # Silent on a healthy series beside the firing one: not every input fires.
        (test,) = [t for t in tests if t["name"] == alert]
        fired = [a["exp_labels"] for c in cases for a in c["exp_alerts"]]
        healthy = [
            s
            for s in test["input_series"]
            if not any(all(f'{k}="{v}"' in s["series"] for k, v in f.items() if k != "severity")
                       for f in fired)
        ]  # fmt: skip
        assert healthy, f"{alert}: no healthy series beside the firing one"


def test_the_alerts_the_issue_asks_for() -> None:
    found = rules()
    error = found["TaskflowErrorRatioHigh"]
    assert error["for"] == "5m"
    assert error["expr"].rstrip().endswith("> 0.01")
    p99 = found["TaskflowLatencyP99High"]
    default = re.search(r'\("--p99-ms", str, "(\d+)"', LOADGEN_CLI.read_text())
    assert default is not None
    assert p99["expr"].rstrip().endswith(f"> {int(default.group(1)) / 1000}")
    assert "histogram_quantile(0.99" in p99["expr"]
    assert found["TaskflowHpaAtMaxReplicas"]["for"] == "10m"
    postgres = found["PostgresConnectionsNearBudget"]["expr"]
    assert "pg_settings_superuser_reserved_connections" in postgres
    assert postgres.rstrip().endswith("> 0.8")
    assert "taskflow_cache_breaker_open" in found["TaskflowCacheBreakerOpen"]["expr"]


@pytest.mark.parametrize("alert", sorted(rules()))
def test_every_alert_says_what_is_wrong(alert: str) -> None:
    rule = rules()[alert]
    assert rule["labels"]["severity"] in {"page", "warn"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
