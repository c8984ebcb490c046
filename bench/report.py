"""The harness's one table, its results folder (git-ignored) and the tracked reference file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.scenarios import Case, Goal

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / ".run" / "bench"
# The figures README.md and tests/deploy use; only `make bench-record` writes it.
REFERENCE_FILE = REPO / "bench" / "reference.json"


@dataclass(frozen=True, slots=True)
class Result:
    key: str
    endpoint: str
    rows: int
    cache: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_ms: float  # server CPU (user + system, whole process tree) per request
    server_busy: float  # server CPU seconds per wall second (1.0: its core was saturated)
    rss_mib: float  # resident memory of the server's process tree after the load
    ceiling: str | None = None
    target: float | None = None
    goal: str = Goal.RATE.value
    ratio: float | None = None

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.target is None:
            return None
        if self.goal == Goal.P50.value:
            return self.ratio <= self.target
        return self.ratio >= self.target


def with_ratio(result: Result, case: Case, ceiling: Result | None) -> Result:
    if ceiling is None or case.target is None:
        return result
    if case.goal is Goal.P50:
        ratio = result.p50_ms / ceiling.p50_ms if ceiling.p50_ms else None
    else:
        ratio = result.rate / ceiling.rate if ceiling.rate else None
    return replace(
        result, ceiling=ceiling.key, target=case.target, goal=case.goal.value, ratio=ratio
    )


def table(results: list[Result]) -> str:
    head = ("endpoint", "rows", "cache", "req/s", "p50 ms", "p99 ms", "errors", "CPU/req ms",
            "busy", "RSS MiB", "ratio to ceiling", "target")  # fmt: skip
    lines = [head]
    for r in results:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f} of {r.ceiling}"
        if r.goal == Goal.P50.value and r.ratio is not None:
            ratio = f"p50 {r.ratio:.2f}x {r.ceiling}"
        target = ""
        if r.target is not None:
            sign = "<=" if r.goal == Goal.P50.value else ">="
            target = f"{sign} {r.target:g} {'met' if r.met else 'MISSED'}"
        lines.append(
            (r.endpoint, f"{r.rows:,}", r.cache, f"{r.rate:,.0f}", f"{r.p50_ms:.2f}",
             f"{r.p99_ms:.2f}", str(r.errors), f"{r.cpu_ms:.3f}", f"{r.server_busy:.0%}",
             f"{r.rss_mib:.0f}", ratio, target)
        )  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    rendered = [" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                for line in lines]  # fmt: skip
    rendered.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(rendered)


def machine() -> dict[str, object]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
    }


def commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() or "unknown"


def document(results: list[Result], command: str, extra: dict[str, object]) -> dict[str, object]:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "command": command,
        "machine": machine(),
        **extra,
        "results": [asdict(r) | {"met": r.met} for r in results],
    }


def write_results(doc: dict[str, object], text: str) -> Path:
    folder = RESULTS_DIR / str(doc["date"]).replace(":", "")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    header = f"{doc['date']}  commit {doc['commit']}  {doc['command']}\n{doc['machine']}\n\n"
    (folder / "table.txt").write_text(header + text + "\n")
    return folder


def write_reference(doc: dict[str, object]) -> None:
    REFERENCE_FILE.write_text(json.dumps(doc, indent=2) + "\n")


def read_reference() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(REFERENCE_FILE.read_text())
    return loaded
