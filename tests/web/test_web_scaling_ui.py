"""The autoscaling panel: "not running in Kubernetes" outside a cluster, and, with stats-api
pointed (KUBECONFIG) at the loopback stub of the Kubernetes API replaying an HPA watch, the
replicas the page shows follow 2 -> 6 -> 10 -> 2."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support import scaling_replay
from tests.support.loopback_http import serving_in_thread
from tests.support.make_up import MakeUp, running_make_up
from tests.support.stub_kube import HPA_WATCH_2_10_2, ManualClock, StubKube, write_kubeconfig
from tests.web.conftest import PageReport, open_ui

pytestmark = pytest.mark.e2e

# The page polls /api/scaling every 3 s; each step must show within two polls and a margin.
SHOWS_WITHIN_MS = 8_000
# Verbs the stats-api Role grants on each resource (deploy/ and tests/stats_api check the Role).
GRANTED = {
    ("autoscaling", "horizontalpodautoscalers"): {"list", "watch"},
    ("apps", "deployments"): {"list", "watch"},
}


def test_outside_a_cluster_the_panel_says_so(page: Page, report: PageReport, stack: MakeUp) -> None:
    open_ui(page, stack)
    expect(page.locator("#scaling-status")).to_have_text(
        "Not running in Kubernetes: there is no autoscaler to show."
    )
    expect(page.locator("#scaling-services article")).to_have_count(0)
    assert report.unexpected_console_errors() == []


@dataclass
class StubCluster:
    """The stub Kubernetes API on a loopback port; the test moves the replay by hand."""

    clock: ManualClock
    kube: StubKube
    kubeconfig: Path


@pytest.fixture
def stub_cluster(tmp_path: Path) -> Iterator[StubCluster]:
    clock = ManualClock()
    kube = StubKube.from_file(HPA_WATCH_2_10_2, clock)
    with serving_in_thread(kube.app()) as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, kube.namespace)
        yield StubCluster(clock, kube, kubeconfig)


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
    with running_make_up({"KUBECONFIG": str(stub_cluster.kubeconfig)}) as stack:
        open_ui(page, stack)
        expect(page.locator("#scaling-status")).to_contain_text("Namespace taskflow")
        for name, figures in scaling_replay.AT_START.items():
            expect_service(page, name, figures)
        shown: list[int | None] = [2]
        for position, services in scaling_replay.STEPS:
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
