"""`make up` starts the whole stack with demo data, and a signal stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.make_up import MakeUp

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
