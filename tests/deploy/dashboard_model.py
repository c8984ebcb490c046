"""Dashboards and PromQL as data: the metric names a query selects, and every panel's queries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadgen.metrics import LoadgenCollector
from loadgen.stats import RunStats
from prometheus_client import ProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from taskflow_core.metrics import EXPORTED_METRICS

from tests.deploy.deploy_model import DEPLOY

MONITORING = DEPLOY / "components" / "monitoring"
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
# kube-state-metrics' series as its documentation lists them, cut to what the panels read.
KSM_FIXTURE = Path(__file__).resolve().parent / "prometheus" / "kube-state-metrics.prom"
# Third-party exporters whose names tests/e2e/test_dashboards_prometheus.py proves with Debian's
# binaries (postgres_exporter 0.11, redis_exporter 1.45, nginx exporter) under a real Prometheus.
EXPORTER_PREFIXES = ("pg_", "redis_", "nginx_")
# Prometheus' own series: the alert state of every pending or firing rule.
PROMETHEUS_ALERTS = "ALERTS"
# Series Prometheus itself attaches to every target (no exporter needed).
PROMETHEUS_BUILTINS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
# Sample names a metric family exposes in the text format.
FAMILY_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
PROMQL_WORDS = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
        "and", "or", "unless", "offset", "inf", "nan",
    }
)  # fmt: skip


def exported_sample_names() -> set[str]:
    names = set(EXPORTED_METRICS)
    for family in EXPORTED_METRICS:
        base = family.removesuffix("_total")
        names |= {base + suffix for suffix in FAMILY_SUFFIXES}
    return names


def process_sample_names() -> set[str]:
    """prometheus-client's process collector, as each API pod's one process exports it."""
    return {s.name for m in ProcessCollector(registry=None).collect() for s in m.samples}


def loadgen_sample_names() -> set[str]:
    """The load generator's /metrics families (the HPA ones need a cluster; panels use none)."""
    names = set()
    for family in LoadgenCollector(RunStats(endpoints={}, stages=[]), [1.0]).collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def kube_state_sample_names() -> set[str]:
    families = text_string_to_metric_families(KSM_FIXTURE.read_text())
    return {s.name for f in families for s in f.samples}


def known_sample_names(name: str) -> bool:
    """Whether a panel may read `name`: a family TaskFlow, its process collector, the load
    generator or kube-state-metrics exports, an exporter's, or Prometheus' own."""
    known = (
        exported_sample_names()
        | process_sample_names()
        | loadgen_sample_names()
        | kube_state_sample_names()
        | PROMETHEUS_BUILTINS
        | {PROMETHEUS_ALERTS}
    )
    return name in known or name.startswith(EXPORTER_PREFIXES)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (labels, functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    text = re.sub(r"\b\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)?\b", " ", text)  # numbers, durations
    text = re.sub(  # grouping label lists
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()
        if following.startswith("(") or word.lower() in PROMQL_WORDS:
            continue  # a function call or a keyword
        names.add(word)
    return names


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel["title"], target["expr"]
