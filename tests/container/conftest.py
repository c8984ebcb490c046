"""Session fixtures of the container tests: the engine, the offline base, and the built images.

The engine comes from scripts/docker-engine.sh (reuse a daemon that answers, else start one with
no bridge and stop it at the end). Under CI=true a missing engine fails the tests; it never skips.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from devstack.servers import free_port
from tests.container.dockerctl import (
    CHECKOUT_TAG,
    DOCKER,
    REPO,
    RESTRICTED,
    Container,
    StartApi,
    build,
    wait_http,
)

ENGINE = REPO / "scripts" / "docker-engine.sh"
BASE_SCRIPT = REPO / "scripts" / "base-image.sh"
API_SERVICES = ("tasks-api", "stats-api")
NGINX_BASE = "taskflow-ci/nginx-base:trixie"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    env = {**os.environ, "DOCKER": DOCKER}
    result = subprocess.run(
        [str(ENGINE), "start"], capture_output=True, text=True, timeout=900, env=env, check=False
    )
    if result.returncode != 0:
        _unavailable(f"no Docker engine: {result.stderr.strip()[-1000:]}")
    started = result.stdout.strip() == "started"
    try:
        yield
    finally:
        if started:
            subprocess.run([str(ENGINE), "stop"], timeout=120, env=env, check=False)


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """The debootstrap stand-in for python:3.12-slim-bookworm, built once and cached."""
    result = subprocess.run(
        [str(BASE_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DOCKER": DOCKER},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return "taskflow-ci/python-base:bookworm"


@pytest.fixture(scope="session")
def api_images(base_image: str) -> dict[str, str]:
    """Both API images built from their Dockerfiles with the repo root as context."""
    tags = {}
    for service in API_SERVICES:
        tag = f"taskflow-test/{service}:{CHECKOUT_TAG}"
        build(service, tag, base=base_image)
        tags[service] = tag
    return tags


@pytest.fixture(scope="session")
def loadgen_image(base_image: str) -> str:
    tag = f"taskflow-test/loadgen:{CHECKOUT_TAG}"
    build("loadgen", tag, base=base_image)
    return tag


@pytest.fixture(scope="session")
def nginx_base(docker_engine: None) -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "base-image.sh"), "nginx"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DOCKER": DOCKER},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return NGINX_BASE


@pytest.fixture(scope="session")
def web_image(nginx_base: str) -> str:
    tag = f"taskflow-test/web:{CHECKOUT_TAG}"
    built = build("web", tag, base=nginx_base, base_arg="NGINX_IMAGE")
    print(f"web image built in {built.seconds:.1f}s")
    return tag


@pytest.fixture
def start_api(redis_url: str) -> Iterator[StartApi]:
    """Start an API image on a free loopback port; returns the container and its base URL once
    /ready answers 200. Every container started here is removed at the end of the test."""
    started: list[Container] = []

    def start(
        image: str,
        database_url: str,
        options: tuple[str, ...] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> tuple[Container, str]:
        port = free_port()
        env = {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            **(extra_env or {}),
        }
        container = Container.start(image, options=options or RESTRICTED, env=env)
        started.append(container)
        base_url = f"http://127.0.0.1:{port}"
        wait_http(container, f"{base_url}/ready")
        return container, base_url

    try:
        yield start
    finally:
        for container in started:
            container.remove()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
