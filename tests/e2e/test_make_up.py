"""`make up` starts the whole stack with demo data, and a signal stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devstack.servers import free_port
from tests.support.make_up import MakeUp, running_make_up

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


@pytest.mark.parametrize("how", ["sigterm-to-make", "ctrl-c-to-group"])
def test_make_up_serves_demo_data_and_stops_everything(make_up: MakeUp, how: str) -> None:
    process, output = make_up.process, make_up.banner
    assert process.poll() is None, output
    tasks, stats, web = make_up.tasks_port, make_up.stats_port, make_up.web_port
    # The UI's URL is the first address of the banner.
    banner = output[output.index("TaskFlow is up") :]
    first_url = re.search(r"http://\S+", banner)
    assert first_url is not None, output
    assert first_url.group(0) == f"http://127.0.0.1:{web}/"
    assert f"http://127.0.0.1:{tasks}/tasks" in output
    assert f"http://127.0.0.1:{stats}/stats" in output
    datastore_ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)/", output)]
    assert len(datastore_ports) >= 2, output
    # Every line a child printed names it; alembic's plugin setup stays quiet at INFO.
    before = output[: output.index("TaskFlow is up")].splitlines()
    assert not [line for line in before if line.startswith("{")], output
    labels = {line.split(" | ", 1)[0].strip() for line in before if " | " in line}
    assert {"migrate", "tasks-api", "stats-api"} <= labels, output
    assert "alembic.runtime.plugins" not in output

    page = httpx.get(f"http://localhost:{tasks}/tasks?priority=high&completed=false", timeout=10)
    assert page.status_code == 200
    items = page.json()["items"]
    assert items
    assert all(item["priority"] == "high" and not item["completed"] for item in items)
    body = httpx.get(f"http://localhost:{stats}/stats", timeout=10).json()
    assert body["total"] == 1000
    assert httpx.get(f"http://localhost:{web}/api/stats", timeout=10).json() == body
    metrics = httpx.get(f"{make_up.urls['web_metrics']}/metrics", timeout=10).text
    assert "nginx_up 1" in metrics

    if how == "sigterm-to-make":
        os.kill(process.pid, signal.SIGTERM)  # only `make`, as `kill` or a supervisor would
    else:
        os.killpg(process.pid, signal.SIGINT)  # the whole foreground group, as a terminal's Ctrl-C
    process.wait(60)
    time.sleep(1)
    for port in [*make_up.ports, *datastore_ports]:
        assert not _listening(port), f"port {port} still listening after make up stopped"
    assert _session_pids(process.pid) == []


def _time_wait_on(port: int) -> int:
    """Sockets of `port` (local side) in TIME_WAIT, as `ss` lists them."""
    listed = subprocess.run(
        ["ss", "-Htan", "state", "time-wait", "sport", "=", f":{port}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return len(listed.stdout.splitlines())


def _fixed_ports() -> dict[str, str]:
    names = ("TASKS_API_PORT", "STATS_API_PORT", "WEB_PORT", "WEB_METRICS_PORT")
    return {name: str(free_port()) for name in names}


def test_make_up_starts_again_at_once_while_old_connections_linger() -> None:
    ports = _fixed_ports()
    with running_make_up(ports) as first:
        for _ in range(20):  # the servers close these, so their side waits in TIME_WAIT
            httpx.get(
                f"{first.urls['tasks']}/health", headers={"connection": "close"}
            ).raise_for_status()
            httpx.get(
                f"{first.urls['web']}/healthz", headers={"connection": "close"}
            ).raise_for_status()
    assert _time_wait_on(first.tasks_port) > 0
    assert _time_wait_on(first.web_port) > 0
    with running_make_up(ports) as second:
        assert httpx.get(f"{second.urls['tasks']}/ready").status_code == 200
        assert httpx.get(f"{second.urls['web']}/api/stats").json()["total"] == 1000


def test_make_up_refuses_clearly_when_a_port_is_really_taken() -> None:
    ports = _fixed_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(ports["TASKS_API_PORT"])))
        squatter.listen()
        result = subprocess.run(
            ["make", "up"], cwd=REPO, env={**os.environ, **ports},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert result.returncode != 0
    expected = (
        f"tasks-api: port {ports['TASKS_API_PORT']} on 127.0.0.1 is taken; set TASKS_API_PORT"
    )
    assert expected in result.stderr + result.stdout
    assert not _listening(int(ports["STATS_API_PORT"]))  # nothing else was started
