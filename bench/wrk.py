"""wrk (the Debian package) as the load: one thread on the load core, closed loop, exact
percentiles and error counts from a Lua `done` hook printed as one JSON line."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Request shape from the environment (method, body, content type); summary as JSON on stdout.
LUA = r"""
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"socket_errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors plus 4xx/5xx answers (wrk counts status > 399)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("bench: wrk not found (make bench installs it: BOOTSTRAP_TOOLS=wrk)")
    return path


def run(
    url: str,
    *,
    seconds: float,
    connections: int,
    core: int,
    method: str = "GET",
    body: str = "",
) -> Load:
    """Closed-loop load on `url` for `seconds` from one wrk thread pinned to `core`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        result = subprocess.run(
            ["taskset", "-c", str(core), require_wrk(), "-t1", f"-c{connections}",
             f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", script.name, url],
            capture_output=True, text=True, check=False, timeout=seconds + 60,
            env={"BENCH_METHOD": method, "BENCH_BODY": body, "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk against {url} failed:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["socket_errors"] + data["status_errors"],
    )
