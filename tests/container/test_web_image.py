"""The web image, built from services/web/Dockerfile on the offline nginx stand-in (Debian's
nginx of the pinned image's version), run as Kubernetes runs it: read-only root filesystem,
UID 10001, no capabilities. It serves the UI and proxies /api/... to real APIs on the host."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from devstack.servers import free_port
from tests.container.dockerctl import (
    DEV,
    DOCKER,
    REPO,
    RESTRICTED,
    Container,
    tar_of,
    wait_http,
)
from tests.support.api_process import ApiProcess, running

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

PINNED = "nginx:1.26.3-bookworm"  # services/web/Dockerfile's default base


@pytest.fixture
def apis(database_url: str, redis_url: str) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    with (
        running("tasks_api", database_url, redis_url) as tasks,
        running("stats_api", database_url, redis_url) as stats,
    ):
        yield tasks, stats


def start_web(
    image: str, apis: tuple[ApiProcess, ApiProcess], options: tuple[str, ...] = RESTRICTED
) -> tuple[Container, str]:
    tasks, stats = apis
    port = free_port()
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STATUS_PORT": str(free_port()),
        "TASKS_API_ADDRESS": tasks.url.removeprefix("http://"),
        "STATS_API_ADDRESS": stats.url.removeprefix("http://"),
    }
    container = Container.start(image, options=options, env=env)
    base_url = f"http://127.0.0.1:{port}"
    wait_http(container, f"{base_url}/healthz")
    return container, base_url


def test_the_pinned_base_and_the_stand_in_run_one_nginx_version(nginx_base: str) -> None:
    dockerfile = (REPO / "services" / "web" / "Dockerfile").read_text()
    assert f"ARG NGINX_IMAGE={PINNED}\n" in dockerfile
    version = subprocess.run(
        [DOCKER, "run", "--rm", "--network", "host", nginx_base, "nginx", "-v"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stderr
    assert f"nginx/{PINNED.split(':')[1].split('-')[0]}" in version


def test_the_configuration_passes_nginx_t_in_the_image(web_image: str) -> None:
    # The image's own defaults (Service DNS names); nginx resolves them when it loads the file.
    hosts = ("--add-host", "tasks-api:127.0.0.1", "--add-host", "stats-api:127.0.0.1")
    result = subprocess.run(
        [DOCKER, "run", "--rm", *RESTRICTED, *hosts, web_image, "-t"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_read_only_non_root_web_serves_the_ui_and_proxies(
    web_image: str, apis: tuple[ApiProcess, ApiProcess]
) -> None:
    container, url = start_web(web_image, apis)
    try:
        status = container.exec("cat", "/proc/1/status").stdout.decode()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4
        # start.sh needs sh to render the configuration, then execs: PID 1 is nginx, no shell
        # stays behind.
        assert container.exec("cat", "/proc/1/comm").stdout.strip() == b"nginx"
        page = httpx.get(f"{url}/", timeout=5)
        assert page.status_code == 200
        assert '<script type="module" src="/js/main.js">' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(f"{url}/js/main.js", timeout=5).status_code == 200
        tasks = httpx.get(f"{url}/api/tasks?limit=2", timeout=10)
        assert tasks.status_code == 200
        assert len(tasks.json()["items"]) <= 2
        assert httpx.get(f"{url}/api/stats", timeout=10).json().keys() >= {"total", "completed"}
        hidden = httpx.get(f"{url}/api/metrics", timeout=5)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
        # The access log is JSON on stdout.
        lines = [line for line in container.logs().splitlines() if line.startswith("{")]
        assert any(json.loads(line)["uri"] == "/api/tasks?limit=2" for line in lines)
        # Nothing outside the runtime directory was written: the root filesystem is read-only.
        touch = container.exec("touch", "/app/services/web/static/x")
        assert touch.returncode != 0
    finally:
        container.remove()


def test_a_synced_static_file_is_served_on_the_next_request(
    web_image: str, apis: tuple[ApiProcess, ApiProcess]
) -> None:
    # The dev overlay: writable root filesystem for the web container, the same user.
    container, url = start_web(web_image, apis, options=DEV)
    try:
        before = httpx.get(f"{url}/app.css", timeout=5)
        edited = before.text + "\n/* edited while running */\n"
        archive = tar_of({"app/services/web/static/app.css": edited.encode()})
        result = container.exec(
            "tar", "xmf", "-", "-C", "/", "--no-same-owner", user="10001", stdin=archive
        )
        assert result.returncode == 0, result.stderr.decode()
        after = httpx.get(f"{url}/app.css", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert after.text.endswith("/* edited while running */\n")
        assert after.headers["etag"] != before.headers["etag"]
    finally:
        container.remove()
