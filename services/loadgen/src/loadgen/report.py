"""The run report: raw counts + serialized histograms, derived figures, verdicts, the table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.config import Thresholds
from loadgen.histogram import decode, encode, new_histogram, summary_ms
from loadgen.scenario import OPERATIONS
from loadgen.stats import ERROR_KINDS, SLOWEST_TRACED, EndpointStats, RunStats
from loadgen.thresholds import evaluate

SCHEMA = "taskflow-loadgen-report/1"


def endpoint_raw(name: str, stats: EndpointStats) -> dict[str, Any]:
    op = OPERATIONS[name]
    return {
        "service": op.service,
        "method": op.method,
        "path": op.path,
        "sent": stats.sent,
        "ok": stats.ok,
        "late": stats.late,
        "dropped": stats.dropped,
        "retries": stats.retries,
        "errors": {kind: stats.errors.get(kind, 0) for kind in ERROR_KINDS},
        "histogram": encode(stats.latency),
        "slowest_traced": slowest_traced(
            {"trace_id": trace_id, "latency_ms": round(seconds * 1000, 3), "outcome": outcome}
            for seconds, trace_id, outcome in stats.slowest
        ),
    }


def slowest_traced(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The SLOWEST_TRACED slowest traced requests, slowest first (find them in the tracing UI)."""
    ordered = sorted(entries, key=lambda e: e["latency_ms"], reverse=True)
    return [dict(entry) for entry in ordered[:SLOWEST_TRACED]]


def raw_report(stats: RunStats, duration_s: float) -> dict[str, Any]:
    """The additive part of a report: what `merge` can sum exactly."""
    return {
        "schema": SCHEMA,
        "model": "open",
        "duration_s": duration_s,
        "stages": [
            {
                "rate": stage.rate,
                "duration_s": stage.duration,
                "elapsed_s": max(stage.duration, stage.last_send),
                "scheduled": stage.scheduled,
                "sent": stage.sent,
                "late": stage.late,
                "dropped": stage.dropped,
            }
            for stage in stats.stages
        ],
        "schedule": {
            "scheduled": stats.scheduled,
            "sent": stats.sent,
            "late": stats.late,
            "dropped": stats.dropped,
            "lag_histogram": encode(stats.lag),
        },
        "endpoints": {name: endpoint_raw(name, e) for name, e in stats.endpoints.items()},
    }


def finalize(report: dict[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """Recompute every derived figure and verdict from the raw counts and histograms."""
    duration = report["duration_s"]
    total_histogram = new_histogram()
    for endpoint in report["endpoints"].values():
        histogram = decode(endpoint["histogram"])
        total_histogram.add(histogram)
        _derive(endpoint, histogram, duration)
    for stage in report["stages"]:
        stage["achieved_rate"] = _rate(stage["sent"], stage["elapsed_s"])
    schedule = report["schedule"]
    schedule["misses"] = schedule["late"] + schedule["dropped"]
    schedule["miss_rate"] = _ratio(schedule["misses"], schedule["scheduled"])
    schedule["lag_ms"] = summary_ms(decode(schedule["lag_histogram"]))
    report["total"] = _total(report["endpoints"], total_histogram, duration)
    report["thresholds"] = thresholds.to_json()
    report["verdicts"] = evaluate(report["endpoints"], schedule["miss_rate"], thresholds)
    report["passed"] = all(v["passed"] for v in report["verdicts"])
    return report


def _derive(endpoint: dict[str, Any], histogram: HdrHistogram, duration: float) -> None:
    endpoint["error_count"] = sum(endpoint["errors"].values())
    endpoint["error_rate"] = _ratio(endpoint["error_count"], endpoint["sent"])
    endpoint["achieved_rate"] = _rate(endpoint["sent"], duration)
    endpoint["latency_ms"] = summary_ms(histogram)


def _total(
    endpoints: Mapping[str, Mapping[str, Any]], histogram: HdrHistogram, duration: float
) -> dict[str, Any]:
    total: dict[str, Any] = {
        key: sum(e[key] for e in endpoints.values()) for key in ("sent", "ok", "late", "dropped")
    }
    total["retries"] = sum(e.get("retries", 0) for e in endpoints.values())
    total["errors"] = {
        k: sum(e["errors"].get(k, 0) for e in endpoints.values()) for k in ERROR_KINDS
    }
    _derive(total, histogram, duration)
    return total


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def render_table(report: Mapping[str, Any]) -> str:
    """The human-readable end-of-run table."""
    header = (
        f"{'endpoint':<10} {'request':<26} {'sent':>8} {'ok':>8} {'errors':>22} {'rate/s':>8} "
        f"{'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8}"
    )
    lines = ["latency in ms from the scheduled send time", header, "-" * len(header)]
    rows = [(name, e) for name, e in report["endpoints"].items() if e["sent"] or e["dropped"]]
    for name, e in [*rows, ("TOTAL", {**report["total"], "method": "", "path": ""})]:
        lat = e["latency_ms"]
        lines.append(
            f"{name:<10} {(e['method'] + ' ' + e['path']).strip():<26} {e['sent']:>8} {e['ok']:>8} "
            f"{_errors(e['errors']):>22} {e['achieved_rate']:>8.1f} "
            + " ".join(_ms(lat[k]) for k in ("p50", "p90", "p99", "p99.9", "max"))
        )
    schedule = report["schedule"]
    lines.append(
        f"schedule: {schedule['scheduled']} scheduled, {schedule['late']} late, "
        f"{schedule['dropped']} dropped at the in-flight cap, "
        f"miss rate {schedule['miss_rate']:.4%}, "
        f"lag p99 {_ms(schedule['lag_ms']['p99']).strip()} ms"
    )
    for number, stage in enumerate(report["stages"], 1):
        lines.append(
            f"stage {number}: target {stage['rate']:g}/s for {stage['duration_s']:g}s -> "
            f"sent {stage['sent']} ({stage['achieved_rate']:.1f}/s), late {stage['late']}, "
            f"dropped {stage['dropped']}"
        )
    retried = {name: e.get("retries", 0) for name, e in report["endpoints"].items()}
    lines.append(
        f"retries after a failed connection: {report['total'].get('retries', 0)}"
        + "".join(f", {name} {count}" for name, count in retried.items() if count)
        + " (creates only, each with its Idempotency-Key)"
    )
    cpus = ", ".join(f"{g['cpu_utilization']:.2f}" for g in report.get("generators", []))
    lines.append(f"generator cpu (share of one core during the load): {cpus or 'n/a'}")
    lines.extend(_hpa_lines(report.get("hpa")))
    lines.extend(_traced_lines(report["endpoints"]))
    lines.append("thresholds:")
    for v in report["verdicts"]:
        value = "n/a" if v["value"] is None else f"{v['value']:.4g}"
        mark = "PASS" if v["passed"] else "FAIL"
        lines.append(f"  {mark} {v['threshold']:<10} {v['scope']:<10} {value} <= {v['limit']:g}")
    lines.append(f"result: {'PASSED' if report['passed'] else 'FAILED'}")
    return "\n".join(lines)


def _hpa_lines(hpa: Mapping[str, Any] | None) -> list[str]:
    if not hpa:
        return ["hpa: no timeline (not in a cluster)"]
    lines = [f"hpa timeline (namespace {hpa['namespace']}, seconds from load start/end):"]
    for name, s in hpa["services"].items():
        lines.append(
            f"  {name}: {s['replicas_at_start']} -> peak {s['peak_replicas']} "
            f"(max {s['max_replicas']}); first scale-up {_s(s['first_scale_up_s'])} "
            f"at cpu {_pct(s['cpu_utilization_at_first_scale_up'])}; "
            f"at max {_s(s['max_replicas_reached_s'])}, "
            f"all ready {_s(s['max_replicas_ready_s'])}; "
            f"peak cpu {_pct(s['peak_cpu_utilization'])}; "
            f"back to {s['min_replicas']} {_s(s['back_to_min_s'])} after the load"
        )
    return lines


def _traced_lines(endpoints: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The slowest traced requests per endpoint: trace ids to look up in the tracing UI."""
    lines = []
    for name, endpoint in endpoints.items():
        for entry in endpoint.get("slowest_traced", []):
            lines.append(
                f"  {name:<10} {entry['latency_ms']:>9.1f} ms  {entry['outcome']:<8} "
                f"trace {entry['trace_id']}"
            )
    return ["slowest traced requests:", *lines] if lines else []


def _s(value: float | None) -> str:
    return "never" if value is None else f"+{value:.1f}s"


def _pct(value: int | None) -> str:
    return "n/a" if value is None else f"{value}%"


def _errors(errors: Mapping[str, int]) -> str:
    parts = [f"{kind}:{count}" for kind, count in errors.items() if count]
    return ",".join(parts) if parts else "0"


def _ms(value: float | None) -> str:
    return f"{'-':>8}" if value is None else f"{value:>8.1f}"
