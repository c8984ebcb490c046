"""The one nginx template: rendered by the image's own script, accepted by the machine's nginx,
bounded as the APIs need, and nginx in front of a real API that stops answers 503 problem+json."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from taskflow_core.problems import ProblemKind
from taskflow_core.server import GRACEFUL_SHUTDOWN_SECONDS
from taskflow_core.settings import PoolSettings

from devstack.servers import free_port
from devstack.web import RENDER, STATIC_ROOT, WebServer, nginx_binary, render_config
from tests.support.api_process import running
from tests.web.http import curl

TEMPLATE = RENDER.parent / "nginx.conf.template"
GOOD = {
    "HOST": "127.0.0.1",
    "PORT": "8080",
    "STATUS_PORT": "8081",
    "TASKS_API_ADDRESS": "tasks-api:8000",
    "STATS_API_ADDRESS": "stats-api:8000",
    "STATIC_ROOT": str(STATIC_ROOT),
}


def render(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], **GOOD, "RUNTIME_DIR": str(tmp_path / "run"), **overrides}
    env = {k: v for k, v in env.items() if v != "<unset>"}
    return subprocess.run(["sh", str(RENDER)], env=env, capture_output=True, text=True, check=False)


def test_the_template_renders_and_nginx_accepts_it(tmp_path: Path) -> None:
    config = render_config(8080, "127.0.0.1:8000", "127.0.0.1:8001", tmp_path, free_port())
    text = config.read_text()
    assert "${" not in text
    assert "listen 127.0.0.1:8080;" in text
    result = subprocess.run(
        [nginx_binary(), "-e", "stderr", "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_cluster_values_render_too(tmp_path: Path) -> None:
    result = render(tmp_path, HOST="0.0.0.0")
    assert result.returncode == 0, result.stderr
    text = Path(result.stdout.strip()).read_text()
    assert "server tasks-api:8000;" in text
    assert "server stats-api:8000;" in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "80a"),
        ("PORT", "70000"),
        ("STATUS_PORT", ""),
        ("TASKS_API_ADDRESS", "tasks-api"),
        ("STATS_API_ADDRESS", "stats api:8000"),
        ("STATS_API_ADDRESS", "x|y:8000"),
        ("TASKS_API_ADDRESS", "<unset>"),
        ("STATIC_ROOT", "relative/path"),
        ("RUNTIME_DIR", "/tmp/with space"),
        ("HOST", "localhost;"),
    ],
)
def test_a_bad_value_stops_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = render(tmp_path, **{variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0], result.stderr


def directive_seconds(name: str) -> float:
    match = re.search(rf"^\s*{name}\s+(\d+)s;", TEMPLATE.read_text(), re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_proxy_waits_longer_than_any_api_answer_may_take() -> None:
    # An API request ends within the server's drain bound, its database work earlier still.
    longest = max(GRACEFUL_SHUTDOWN_SECONDS, PoolSettings().request_bound)
    assert directive_seconds("proxy_read_timeout") > longest
    assert directive_seconds("proxy_send_timeout") > longest
    assert "client_max_body_size 64k;" in TEMPLATE.read_text()


def test_nginx_problem_titles_are_the_apis_titles() -> None:
    text = TEMPLATE.read_text()
    types = dict(
        re.findall(r'^\s*(\d{3})\s+"https://taskflow.dev/problems/([a-z-]+)";', text, re.M)
    )
    title_map = text.split("$problem_title {", 1)[1].split("}", 1)[0]
    titles = dict(re.findall(r'^\s*(\d{3})\s+"([^"]+)";', title_map, re.M))
    by_slug = {kind.slug: kind for kind in ProblemKind}
    assert types, "the template maps statuses to problem types"
    for status, slug in types.items():
        kind = by_slug[slug]
        assert kind.status == int(status)
        assert titles[status] == kind.title, slug


@pytest.fixture
def web_before_a_real_api(database_url: str, redis_url: str) -> Iterator[tuple[WebServer, object]]:
    with running("tasks_api", database_url, redis_url) as tasks:
        address = tasks.url.removeprefix("http://")
        web = WebServer(free_port(), address, "127.0.0.1:9")
        try:
            web.start()
            yield web, tasks
        finally:
            web.stop()


def test_a_stopped_api_answers_503_problem_json(
    web_before_a_real_api: tuple[WebServer, object],
) -> None:
    web, tasks = web_before_a_real_api
    assert curl(f"{web.url}/api/tasks?limit=1").status == 200
    tasks.process.terminate()  # type: ignore[attr-defined]
    tasks.process.wait(30)  # type: ignore[attr-defined]
    answer = curl(f"{web.url}/api/tasks?limit=1")
    assert answer.status == 503
    assert answer.header("content-type") == "application/problem+json"
    assert answer.header("retry-after") == "5"
    body = json.loads(answer.body)
    assert body["type"] == "https://taskflow.dev/problems/service-unavailable"
    assert body["title"] == ProblemKind.SERVICE_UNAVAILABLE.title
    assert body["status"] == 503
    assert answer.header("content-security-policy")
    # The UI itself still loads, and the other API's route fails the same readable way.
    assert httpx.get(f"{web.url}/", timeout=5).status_code == 200
    assert curl(f"{web.url}/api/stats").status == 503
