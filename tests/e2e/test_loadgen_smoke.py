"""The load generator's smoke profile against the real local stack (`make up`): every request of
the read loop and the write mix succeeds, the report is written and judged; a threshold set to
fail makes it exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.make_up import MakeUp

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(shared_make_up: MakeUp) -> dict[str, str]:
    assert shared_make_up.process.poll() is None, shared_make_up.output
    return shared_make_up.urls


def _loadgen(urls: dict[str, str], report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    return subprocess.run(
        [
            sys.executable, "-m", "loadgen", "run", "--profile=smoke",
            f"--tasks-url={urls['tasks']}", f"--stats-url={urls['stats']}",
            "--wait-ready=60s", "--metrics-port=0", "--seed=4", f"--report={report}", *args,
        ],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_smoke_profile_passes_with_zero_errors(stack: dict[str, str], tmp_path: Path) -> None:
    report_path = tmp_path / "smoke.json"
    # limits generous enough for a busy CI machine: this checks the machinery, not performance
    done = _loadgen(stack, report_path, "--p99-ms=2000", "--lag-bound-ms=500")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["passed"] is True
    assert report["schedule"]["scheduled"] == 75  # smoke: 5 req/s for 15 s
    total = report["total"]
    assert total["sent"] == total["ok"] == 75
    assert total["error_count"] == 0
    used = {name for name, e in report["endpoints"].items() if e["sent"]}
    assert {"list", "high", "pending", "stats"} <= used
    assert used & {"create", "complete", "delete"}  # the write mix ran against the real API
    assert {v["threshold"] for v in report["verdicts"]} == {"p99_ms", "error_rate", "miss_rate"}
    assert "result: PASSED" in done.stdout
    # the tasks it created are gone again: the data set stays bounded
    left = httpx.get(f"{stack['tasks']}/tasks", params={"q": "loadgen", "limit": 100}, timeout=10)
    assert left.status_code == 200
    assert left.json()["items"] == []


def test_a_threshold_set_to_fail_exits_1(stack: dict[str, str], tmp_path: Path) -> None:
    report_path = tmp_path / "fail.json"
    done = _loadgen(stack, report_path, "--stages=5:3s", "--p99-ms=0.001")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["passed"] is False
    assert report["total"]["error_count"] == 0
    assert any(not v["passed"] and v["threshold"] == "p99_ms" for v in report["verdicts"])
