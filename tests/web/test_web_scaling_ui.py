"""The autoscaling panel: "not running in Kubernetes" outside a cluster, and, with stats-api
pointed at a loopback stub of the Kubernetes API replaying an HPA watch, the replicas the page
shows follow 2 -> 6 -> 10 -> 2."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Page, expect

from devstack.servers import free_port
from tests.loadgen.stub_kube import StubKube
from tests.support.make_up import MakeUp, running_make_up
from tests.web.conftest import PageReport, open_ui
from tests.web.scaling_route import WAITING_FOR_SCALING, stats_api_serves_scaling

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not stats_api_serves_scaling(), reason=WAITING_FOR_SCALING),
]

RECORDING = Path(__file__).resolve().parents[1] / "loadgen" / "data" / "hpa-watch-2-10-2.json"
# The recording is time-compressed (the load lasts 3 s); the page polls every 3 s, so replay it
# 8 times slower: every replica count then stays on screen for longer than one poll.
STRETCH = 8.0


def test_outside_a_cluster_the_panel_says_so(page: Page, report: PageReport, stack: MakeUp) -> None:
    open_ui(page, stack)
    expect(page.locator("#scaling-status")).to_have_text(
        "Not running in Kubernetes: there is no autoscaler to show."
    )
    expect(page.locator("#scaling-services article")).to_have_count(0)
    assert report.unexpected_console_errors() == []


def stretched_recording() -> dict[str, Any]:
    recording: dict[str, Any] = json.loads(RECORDING.read_text())
    slow = copy.deepcopy(recording)
    for event in slow["events"]:
        event["at"] = round(event["at"] * STRETCH, 3)
    return slow


class StubCluster:
    """StubKube served on a loopback port from a thread; the replay starts at `begin()`."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.started: float | None = None
        self.kube = StubKube(stretched_recording(), origin=lambda: self.started)
        self.account = tmp_path / "serviceaccount"
        self.account.mkdir()
        (self.account / "token").write_text("stub-token")
        (self.account / "namespace").write_text("taskflow")
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.kube.app())
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> StubCluster:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def begin(self) -> None:
        self.started = time.monotonic()

    def env(self) -> dict[str, str]:
        """The in-cluster environment a pod gets, pointed at the stub. The one place that says
        how stats-api finds its API server and service-account files."""
        return {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.port),
            "KUBERNETES_SERVICE_SCHEME": "http",
            "KUBERNETES_SERVICE_ACCOUNT_DIR": str(self.account),
        }


@pytest.fixture
def stub_cluster(tmp_path: Path) -> Iterator[StubCluster]:
    cluster = StubCluster(tmp_path).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_the_panel_follows_a_replayed_scale_out_and_back(
    page: Page, report: PageReport, stub_cluster: StubCluster
) -> None:
    with running_make_up(stub_cluster.env()) as stack:
        open_ui(page, stack)
        replicas = page.locator('[data-service="tasks-api"] [data-field="current_replicas"]')
        expect(replicas).to_have_text("2", timeout=15_000)
        expect(page.locator('[data-service="tasks-api"] [data-field="range"]')).to_have_text(
            "2 \u2013 10"
        )
        stub_cluster.begin()
        seen: list[str] = ["2"]
        deadline = time.monotonic() + 5.0 * STRETCH + 10
        while time.monotonic() < deadline:
            value = replicas.inner_text()
            if value != seen[-1]:
                seen.append(value)
            if seen[-1] == "2" and "10" in seen:
                break
            page.wait_for_timeout(200)
        counts = [int(v) for v in seen]
        assert counts[0] == 2, seen
        assert 6 in counts, seen
        assert counts.index(6) < counts.index(10), seen
        assert counts[-1] == 2, seen
        assert max(counts) == 10, seen
    calls = {(c.group, c.resource, c.verb) for c in stub_cluster.kube.calls}
    assert calls <= {
        ("autoscaling", "horizontalpodautoscalers", "list"),
        ("autoscaling", "horizontalpodautoscalers", "watch"),
        ("apps", "deployments", "list"),
        ("apps", "deployments", "watch"),
    }, calls
    assert report.unexpected_console_errors() == []
