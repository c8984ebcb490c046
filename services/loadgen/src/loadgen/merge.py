"""Combine the reports of several generators (pods) exactly: counts summed, histograms added."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadgen.config import ConfigError, Thresholds
from loadgen.histogram import decode, encode
from loadgen.report import SCHEMA, finalize, slowest_traced

# `--print-json` writes the report as one log line with this prefix, so `kubectl logs` collects it
LOG_PREFIX = "LOADGEN_REPORT "


def load_reports(path: str) -> list[dict[str, Any]]:
    """A report file, or a log holding `LOADGEN_REPORT {...}` lines (one per run)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if text.lstrip().startswith("{"):
            reports = [json.loads(text)]
        else:
            lines = (line.partition(LOG_PREFIX)[2] for line in text.splitlines())
            reports = [json.loads(line) for line in lines if line]
    except ValueError as exc:
        raise ConfigError(f"{path}: not a loadgen report ({exc})") from None
    if not reports:
        raise ConfigError(f"{path}: no loadgen report found")
    for report in reports:
        if not isinstance(report, dict) or report.get("schema") != SCHEMA:
            raise ConfigError(f"{path}: not a {SCHEMA} report")
    return reports


def merge_reports(
    reports: Sequence[dict[str, Any]], thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """One report as if one generator had sent everything; thresholds default to the first's."""
    if not reports:
        raise ConfigError("nothing to merge")
    if len({len(r["stages"]) for r in reports}) != 1:
        raise ConfigError("reports have different stage lists; merge runs of one profile")
    first = reports[0]
    merged: dict[str, Any] = {
        "schema": SCHEMA,
        "model": "open",
        "sources": sum(r.get("sources", 1) for r in reports),
        "profile": first.get("profile"),
        "targets": first.get("targets"),
        "config": first.get("config"),
        "started_at": min(r["started_at"] for r in reports),
        "ended_at": max(r["ended_at"] for r in reports),
        # generators run side by side, so the load lasted as long as the longest one
        "duration_s": max(r["duration_s"] for r in reports),
        "generators": [g for r in reports for g in r["generators"]],
        "stages": [
            _merge_stage(parts) for parts in zip(*(r["stages"] for r in reports), strict=True)
        ],
        "schedule": _merge_schedule([r["schedule"] for r in reports]),
        "endpoints": _merge_endpoints([r["endpoints"] for r in reports]),
        "hpa": _richest_hpa(reports),
    }
    chosen = thresholds or Thresholds.from_json(first["thresholds"])
    return finalize(merged, chosen)


def _merge_stage(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    stage = _sum(parts, ("rate", "scheduled", "sent", "late", "dropped"))
    stage["duration_s"] = max(p["duration_s"] for p in parts)
    stage["elapsed_s"] = max(p["elapsed_s"] for p in parts)
    return stage


def _merge_schedule(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    schedule = _sum(parts, ("scheduled", "sent", "late", "dropped"))
    schedule["lag_histogram"] = _add_histograms(p["lag_histogram"] for p in parts)
    return schedule


def _merge_endpoints(parts: Sequence[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in dict.fromkeys(name for part in parts for name in part):
        present = [part[name] for part in parts if name in part]
        endpoint = {key: present[0][key] for key in ("service", "method", "path")}
        endpoint.update(_sum(present, ("sent", "ok", "late", "dropped")))
        endpoint["retries"] = sum(p.get("retries", 0) for p in present)
        kinds = dict.fromkeys(kind for p in present for kind in p["errors"])
        endpoint["errors"] = {k: sum(p["errors"].get(k, 0) for p in present) for k in kinds}
        endpoint["histogram"] = _add_histograms(p["histogram"] for p in present)
        endpoint["slowest_traced"] = slowest_traced(
            entry for p in present for entry in p.get("slowest_traced", [])
        )
        merged[name] = endpoint
    return merged


def _sum(parts: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {key: sum(p[key] for p in parts) for key in keys}


def _add_histograms(encoded: Any) -> str:
    histograms = [decode(text) for text in encoded]
    total = histograms[0]
    for histogram in histograms[1:]:
        total.add(histogram)
    return encode(total)


def _richest_hpa(reports: Sequence[dict[str, Any]]) -> Any:
    """Every pod watches the same HPAs: keep the timeline with the most samples."""
    timelines = [r["hpa"] for r in reports if r.get("hpa")]
    if not timelines:
        return None
    return max(timelines, key=lambda h: sum(len(s["series"]) for s in h["services"].values()))
