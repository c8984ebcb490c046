"""The loadgen image: built from its Dockerfile, runs its CLI read-only as the app user."""

from __future__ import annotations

import pytest

from tests.container.dockerctl import RESTRICTED, image_config, run_once

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
