"""The autoscaling panel: "not running in Kubernetes" outside a cluster, and, with stats-api
pointed (KUBECONFIG) at the loopback stub of the Kubernetes API replaying an HPA watch, the
replicas the page shows follow 2 -> 6 -> 10 -> 2."""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Page, expect

from devstack.servers import free_port
from tests.support.make_up import MakeUp, running_make_up
from tests.web.conftest import PageReport, open_ui
from tests.web.scaling_route import WAITING_FOR_SCALING, stats_api_serves_scaling

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not stats_api_serves_scaling(), reason=WAITING_FOR_SCALING),
]

# The page polls /api/scaling every 3 s; each step must show within two polls and a margin.
SHOWS_WITHIN_MS = 8_000
# Verbs the stats-api Role grants on each resource (deploy/ and tests/stats_api check the Role).
GRANTED = {
    ("autoscaling", "horizontalpodautoscalers"): {"list", "watch"},
    ("apps", "deployments"): {"list", "watch"},
}


def support(module: str) -> Any:
    """tests.support.<module>, shared with the /scaling tests of stats-api (loaded by name: they
    arrive with GET /scaling itself, and this module is skipped until then)."""
    return importlib.import_module(f"tests.support.{module}")


def test_outside_a_cluster_the_panel_says_so(page: Page, report: PageReport, stack: MakeUp) -> None:
    open_ui(page, stack)
    expect(page.locator("#scaling-status")).to_have_text(
        "Not running in Kubernetes: there is no autoscaler to show."
    )
    expect(page.locator("#scaling-services article")).to_have_count(0)
    assert report.unexpected_console_errors() == []


class StubCluster:
    """The stub Kubernetes API on a loopback port, served from a thread; the test moves the
    replay by hand (`advance_to`)."""

    def __init__(self, tmp_path: Path) -> None:
        stub = support("stub_kube")
        self.clock = stub.ManualClock()
        self.kube = stub.StubKube.from_file(stub.HPA_WATCH_2_10_2, self.clock)
        self.port = free_port()
        self.kubeconfig = stub.write_kubeconfig(
            tmp_path / "kubeconfig", f"http://127.0.0.1:{self.port}", self.kube.namespace
        )
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.kube.app())
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> StubCluster:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture
def stub_cluster(tmp_path: Path) -> Iterator[StubCluster]:
    cluster = StubCluster(tmp_path).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def expect_service(page: Page, name: str, figures: dict[str, int | None]) -> None:
    card = page.locator(f'[data-service="{name}"]')
    for field in ("current_replicas", "desired_replicas", "ready_replicas"):
        expect(card.locator(f'[data-field="{field}"]')).to_have_text(
            str(figures[field]), timeout=SHOWS_WITHIN_MS
        )
    expect(card.locator('[data-field="range"]')).to_have_text(
        f"{figures['min_replicas']} \u2013 {figures['max_replicas']}"
    )
    expect(card.locator('[data-field="cpu"]')).to_have_text(
        f"{figures['cpu_utilization_percent']} % of target "
        f"{figures['target_cpu_utilization_percent']} %",
        timeout=SHOWS_WITHIN_MS,
    )


def test_the_panel_follows_a_replayed_scale_out_and_back(
    page: Page, report: PageReport, stub_cluster: StubCluster
) -> None:
    replay = support("scaling_replay")
    with running_make_up({"KUBECONFIG": str(stub_cluster.kubeconfig)}) as stack:
        open_ui(page, stack)
        expect(page.locator("#scaling-status")).to_contain_text("Namespace taskflow")
        for name, figures in replay.AT_START.items():
            expect_service(page, name, figures)
        shown: list[int] = [2]
        for position, services in replay.STEPS:
            stub_cluster.clock.advance_to(position)
            for name, figures in services.items():
                expect_service(page, name, figures)
            shown.append(services["tasks-api"]["current_replicas"])
        # tasks-api's replicas as the page showed them, step by step.
        assert [n for i, n in enumerate(shown) if i == 0 or n != shown[i - 1]] == [2, 6, 10, 2]
        assert report.unexpected_console_errors() == []
    calls = {(c.group, c.resource, c.verb) for c in stub_cluster.kube.calls}
    assert calls, "stats-api never called the stub"
    for group, resource, verb in calls:
        assert verb in GRANTED.get((group, resource), set()), (group, resource, verb)
