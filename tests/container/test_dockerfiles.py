"""The Dockerfiles keep the offline recipe (plain text checks: they run in `make test`)."""

from __future__ import annotations

import json
import re

import pytest

from tests.container.dockerctl import REPO

SERVICES = {
    "tasks-api": ["python3", "-m", "tasks_api"],
    "stats-api": ["python3", "-m", "stats_api"],
    "loadgen": ["loadgen"],
}


def _instructions(service: str) -> list[tuple[str, str]]:
    text = (REPO / "services" / service / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_builds_offline_on_any_base(service: str) -> None:
    text = (REPO / "services" / service / "Dockerfile").read_text()
    # A `# syntax=` line pulls a frontend image from a registry.
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    steps = _instructions(service)
    assert steps[0] == ("ARG", "PYTHON_IMAGE=python:3.12-slim-bookworm")
    stages: list[str] = []
    for instruction, argument in steps:
        if instruction == "FROM":
            image, _, name = argument.partition(" AS ")
            assert image == "${PYTHON_IMAGE}" or image in stages, argument
            stages.append(name.strip())
    # The venv is built and run by the same interpreter path: the runtime is FROM the base too.
    final = [argument for instruction, argument in steps if instruction == "FROM"][-1]
    assert final.startswith("${PYTHON_IMAGE} ")


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_runtime_user_and_entrypoint(service: str) -> None:
    steps = _instructions(service)
    assert ("USER", "10001:10001") in steps
    entrypoints = [argument for instruction, argument in steps if instruction == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == SERVICES[service]  # exec form: JSON array
    assert not [argument for instruction, argument in steps if instruction == "CMD"]


@pytest.mark.parametrize("service", SERVICES)
def test_dockerignore_is_an_allow_list(service: str) -> None:
    lines = [
        line.strip()
        for line in (REPO / "services" / service / "Dockerfile.dockerignore")
        .read_text()
        .splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    assert f"services/{service}/src" in allowed
    assert not [path for path in allowed if path.startswith(("tests", "deploy", "docs"))]
    others = [other for other in SERVICES if other != service]
    assert not [path for path in allowed for other in others if f"services/{other}" in path]


def test_api_dockerfiles_differ_only_in_the_service() -> None:
    # Two files by design (one per service folder, no build arguments); this keeps them in step.
    def normalised(service: str) -> list[tuple[str, str]]:
        package = service.replace("-", "_")
        return [
            (op, args.replace(service, "<svc>").replace(package, "<pkg>"))
            for op, args in _instructions(service)
        ]

    assert normalised("tasks-api") == normalised("stats-api")
