"""The database password never appears in a log line or an error body.

`make up` runs with a password its PostgreSQL requires (POSTGRES_PASSWORD), every process logging
at DEBUG; the stack is driven through its answers and its failures — client errors, the database
refusing connections under the running APIs, a wrong password, malformed DATABASE_URLs, the
migrate command — and then stopped. Every line `make up` printed (banner, migrations, both APIs,
nginx, shutdown), every other process's output and every response body is searched for it.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from devstack.servers import wait_until
from tests.support.apiserver import api_server, service_env
from tests.support.make_up import MakeUp, running_make_up

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]

# URL-safe, so it reads the same inside a URL; long and random, so it never matches by chance.
PASSWORD = "pw-" + secrets.token_urlsafe(24)
WRONG_PASSWORD = "pw-" + secrets.token_urlsafe(24)


class Evidence:
    """Everything the run printed or answered, to be searched for the passwords."""

    def __init__(self) -> None:
        self.logs: dict[str, str] = {}
        self.bodies: dict[str, str] = {}
        self.error_statuses: list[int] = []
        self.banner = ""
        self.refused_without_password = False

    def log(self, what: str, text: str) -> None:
        self.logs[f"{len(self.logs):03d} {what}"] = text

    def response(self, what: str, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        key = f"{len(self.bodies):03d} {what} -> {response.status_code}"
        self.bodies[key] = f"{headers}\n\n{response.text}"
        if response.status_code >= 500:
            self.error_statuses.append(response.status_code)
        return response


def holding(texts: dict[str, str], *secrets_: str) -> list[str]:
    return [what for what, text in texts.items() if any(s in text for s in secrets_)]


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    """One `make up` with a password, driven, faulted and stopped; what it all printed."""
    found = Evidence()
    with running_make_up({"POSTGRES_PASSWORD": PASSWORD, "LOG_LEVEL": "DEBUG"}) as stack:
        found.banner = stack.banner
        shown = re.search(r"postgresql://postgres@127\.0\.0\.1:\d+/taskflow", stack.banner)
        assert shown, stack.banner
        try:
            psycopg.connect(shown.group(0), connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            found.refused_without_password = "password" in str(exc)
        with httpx.Client(timeout=10) as http:
            drive(http, stack.urls, found, "healthy")
            refuse_connections(stack, http, stack.urls, found)
            drive(http, stack.urls, found, "recovered")
        run_migrate_command(stack, found)
        run_with_a_wrong_password(stack, found)
        start_with_malformed_urls(found)
    found.log("make up's output, start to stop", stack.output)
    return found


def database_url(stack: MakeUp, password: str, database: str = "taskflow") -> str:
    match = re.search(r"postgresql://postgres@127\.0\.0\.1:(\d+)/taskflow", stack.banner)
    assert match, stack.banner
    return f"postgresql://postgres:{password}@127.0.0.1:{match.group(1)}/{database}"


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_make_up_requires_the_password_and_never_shows_it(evidence: Evidence) -> None:
    assert evidence.refused_without_password
    assert "(password: $POSTGRES_PASSWORD)" in evidence.banner
    assert PASSWORD not in evidence.banner


def test_no_log_line_holds_the_password(evidence: Evidence) -> None:
    (make_up,) = [text for what, text in evidence.logs.items() if "make up" in what]
    # The whole run is there: migrations, both APIs at DEBUG, the outage, the shutdown.
    assert "up: SIGINT received; everything stopped" in make_up
    assert '"level": "debug"' in make_up
    assert holding(evidence.logs, PASSWORD, WRONG_PASSWORD) == []


def test_no_error_body_holds_the_password(evidence: Evidence) -> None:
    assert evidence.error_statuses, "the database outage produced no 5xx answer"
    assert holding(evidence.bodies, PASSWORD, WRONG_PASSWORD) == []


def drive(http: httpx.Client, urls: dict[str, str], evidence: Evidence, phase: str) -> None:
    """Answers of every kind through both APIs and the web entry point."""
    tasks, stats, web = urls["tasks"], urls["stats"], urls["web"]
    created = evidence.response(
        f"{phase} create", http.post(f"{tasks}/tasks", json={"title": phase})
    )
    assert created.status_code == 201, created.text
    for method, url, body in [
        ("GET", f"{tasks}/tasks?limit=3", None),
        ("GET", f"{tasks}/tasks/{created.json()['id']}", None),
        ("GET", f"{tasks}/tasks/999999999", None),
        ("GET", f"{tasks}/tasks?limit=1000", None),
        ("GET", f"{tasks}/tasks?cursor=forged", None),
        ("POST", f"{tasks}/tasks", {"title": ""}),
        ("POST", f"{tasks}/tasks", {"title": "x", "owner": "unknown field"}),
        ("PATCH", f"{tasks}/tasks/{created.json()['id']}", {"priority": "urgent"}),
        ("GET", f"{tasks}/ready", None),
        ("GET", f"{stats}/stats", None),
        ("GET", f"{stats}/scaling", None),
        ("GET", f"{stats}/ready", None),
        ("GET", f"{tasks}/metrics", None),
        ("GET", f"{web}/api/tasks?limit=2", None),
        ("GET", f"{web}/api/ready", None),
        ("GET", f"{web}/api/stats", None),
    ]:
        evidence.response(f"{phase} {method} {url}", http.request(method, url, json=body))


def refuse_connections(
    stack: MakeUp, http: httpx.Client, urls: dict[str, str], evidence: Evidence
) -> None:
    """The database refuses the APIs' connections and drops the ones they hold, as a failing
    database does, then comes back; requests meanwhile answer 5xx, logged by the APIs."""
    admin = database_url(stack, PASSWORD, "postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute("ALTER DATABASE taskflow ALLOW_CONNECTIONS false")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'taskflow'"
        )
        try:
            for n in range(3):
                for url in (
                    f"{urls['tasks']}/tasks?limit={n + 1}",
                    f"{urls['tasks']}/ready",
                    f"{urls['stats']}/stats",
                    f"{urls['stats']}/ready",
                    f"{urls['web']}/api/tasks?limit={n + 1}",
                ):
                    evidence.response(f"outage GET {url}", http.get(url))
                created = http.post(f"{urls['tasks']}/tasks", json={"title": "during the outage"})
                evidence.response("outage POST /tasks", created)
        finally:
            conn.execute("ALTER DATABASE taskflow ALLOW_CONNECTIONS true")
    for base in (urls["tasks"], urls["stats"]):
        wait_until(lambda b=base: http.get(f"{b}/ready").status_code == 200, 60, f"{base}/ready")


def run_migrate_command(stack: MakeUp, evidence: Evidence) -> None:
    """The initContainer's command, with the right password (a no-op upgrade) and a wrong one."""
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    command = [sys.executable, "-m", "taskflow_core.migrate_command"]
    for password, expected in ((PASSWORD, 0), (WRONG_PASSWORD, None)):
        env = {**base, "DATABASE_URL": database_url(stack, password), "LOG_LEVEL": "DEBUG"}
        result = run(command, env)
        evidence.log(f"migrate command ({result.returncode})", result.stdout + result.stderr)
        if expected is not None:
            assert result.returncode == expected, result.stdout + result.stderr
        else:
            assert result.returncode != 0, "a wrong password was accepted"


def run_with_a_wrong_password(stack: MakeUp, evidence: Evidence) -> None:
    """An API whose DATABASE_URL carries a wrong password: its answers and its whole log."""
    env = service_env(database_url(stack, WRONG_PASSWORD), LOG_LEVEL="DEBUG")
    with api_server("tasks_api", env) as server, httpx.Client(timeout=10) as http:
        for path in ("/ready", "/tasks?limit=2", "/tasks/1"):
            evidence.response(f"wrong password GET {path}", http.get(server.base_url + path))
        evidence.response(
            "wrong password POST /tasks", http.post(server.base_url + "/tasks", json={"title": "x"})
        )
        time.sleep(0.5)  # the last lines reach the log file
        evidence.log("tasks-api log with a wrong password", server.log())


# Malformed URLs that carry the password: each stops the process with one line naming the
# variable, which must not repeat the password.
MALFORMED = (
    "postgresql://postgres:{password}",
    "postgresql://postgres:{password}/taskflow",
    "postgresql://postgres:{password}@127.0.0.1:port/taskflow",
    "mysql://postgres:{password}@127.0.0.1/taskflow",
    "postgresql://postgres:{password}@127.0.0.1:5432",
    "{password}",
)


def start_with_malformed_urls(evidence: Evidence) -> None:
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    for template in MALFORMED:
        url = template.format(password=PASSWORD)
        for module in ("tasks_api", "taskflow_core.migrate_command"):
            result = run([sys.executable, "-m", module], {**base, "DATABASE_URL": url})
            assert result.returncode == 2, f"{module} {template}: {result.stderr}"
            assert "DATABASE_URL" in result.stderr
            evidence.log(f"{module} with {template}", result.stdout + result.stderr)
