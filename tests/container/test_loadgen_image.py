"""The loadgen image: built from its Dockerfile, runs its CLI read-only as the app user."""

from __future__ import annotations

import json

import pytest

from tests.container.dockerctl import RESTRICTED, StartApi, image_config, run_once

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]


def test_loadgen_image_config(loadgen_image: str) -> None:
    config = image_config(loadgen_image)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["loadgen"]
    assert not config["Cmd"]


def test_loadgen_help_runs_read_only_as_app_user(loadgen_image: str) -> None:
    result = run_once(loadgen_image, "--help", options=RESTRICTED)
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout
    assert "merge" in result.stdout


def test_loadgen_image_has_no_build_tools(loadgen_image: str) -> None:
    script = "id -u; for t in gcc cc make uv pip; do command -v $t && echo found; done; true"
    result = run_once(loadgen_image, "-c", script, options=RESTRICTED, entrypoint="sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001"]


def test_loadgen_smoke_against_api_containers(
    loadgen_image: str, api_images: dict[str, str], database_url: str, start_api: StartApi
) -> None:
    _, tasks_url = start_api(api_images["tasks-api"], database_url)
    _, stats_url = start_api(api_images["stats-api"], database_url)
    result = run_once(
        loadgen_image,
        "run",
        "--tasks-url", tasks_url,
        "--stats-url", stats_url,
        "--stages", "20:3s",
        "--report", "/tmp/loadgen-report.json",
        "--metrics-port", "0",
        "--progress-interval", "0",
        "--print-json",
        # This checks the image's machinery, not performance: generous bounds for a busy machine.
        "--lag-bound-ms", "500",
        "--p99-ms", "2000",
        options=RESTRICTED,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADGEN_REPORT "))
    report = json.loads(line.removeprefix("LOADGEN_REPORT "))
    assert report["targets"] == {"tasks": tasks_url, "stats": stats_url}
    assert report["total"]["sent"] > 0
    assert report["total"]["ok"] == report["total"]["sent"]
