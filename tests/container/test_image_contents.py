"""What the images hold and how they are configured: non-root, exec form, no build tools, tar."""

from __future__ import annotations

import pytest

from tests.container.dockerctl import RESTRICTED, image_config, run_once

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

ENTRYPOINTS = {
    "tasks-api": ["python3", "-m", "tasks_api"],
    "stats-api": ["python3", "-m", "stats_api"],
}
PACKAGES = {"tasks-api": "tasks_api", "stats-api": "stats_api"}
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "make", "ld", "as", "uv", "pip", "pip3")


@pytest.mark.parametrize("service", ["tasks-api", "stats-api"])
def test_api_image_config(api_images: dict[str, str], service: str) -> None:
    config = image_config(api_images[service])["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ENTRYPOINTS[service]
    assert not config["Cmd"], "a CMD would be appended to the exec-form entrypoint"
    assert config["WorkingDir"] == "/app"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert (env["HOST"], env["PORT"]) == ("0.0.0.0", "8000")
    assert env["PATH"].startswith("/opt/venv/bin:")


@pytest.mark.parametrize("service", ["tasks-api", "stats-api"])
def test_api_image_runs_as_app_user_without_build_tools(
    api_images: dict[str, str], service: str
) -> None:
    package = PACKAGES[service]
    script = f"""
        set -e
        id -u; id -g
        for tool in {" ".join(BUILD_TOOLS)}; do
            if command -v "$tool" >/dev/null; then echo "found $tool"; fi
        done
        tar --version | head -n 1
        stat -c '%u:%g %n' /app /app/services/{service}/src/{package}/__init__.py \\
            /app/libs/taskflow-core/src/taskflow_core/__init__.py /app/alembic.ini /app/alembic
        python3 -c 'import {package}, taskflow_core; print({package}.__file__)'
        touch /app/probe 2>/dev/null && echo "root filesystem writable" || true
        touch /tmp/probe && echo "tmp writable"
    """
    result = run_once(api_images[service], "-c", script, options=RESTRICTED, entrypoint="sh")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["10001", "10001"]
    assert not [line for line in lines if line.startswith("found ")], result.stdout
    assert any(line.startswith("tar (GNU tar)") for line in lines)
    owners = [line.split(" ", 1)[0] for line in lines if line.startswith(("10001:", "0:"))]
    assert owners == ["10001:10001"] * 5, result.stdout
    # Editable install: the interpreter imports the copied source under /app, which sync replaces.
    assert f"/app/services/{service}/src/{package}/__init__.py" in lines
    assert "root filesystem writable" not in lines
    assert "tmp writable" in lines


@pytest.mark.parametrize("service", ["tasks-api", "stats-api"])
def test_api_image_copies_only_what_it_needs(api_images: dict[str, str], service: str) -> None:
    other = "stats-api" if service == "tasks-api" else "tasks-api"
    script = "ls -A /app; ls -A /app/services; ls -A /app/libs/taskflow-core"
    result = run_once(api_images[service], "-c", script, options=RESTRICTED, entrypoint="sh")
    assert result.returncode == 0, result.stderr
    entries = set(result.stdout.split())
    assert {"alembic.ini", "alembic", "libs", "services", service, "src"} <= entries
    assert not entries & {other, "loadgen", "tests", "deploy", "README.md", ".git", "uv.lock"}
    assert "__pycache__" not in result.stdout
