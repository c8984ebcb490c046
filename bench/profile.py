"""Where a server's CPU goes under load: py-spy samples the process tree while wrk drives one
endpoint; the summary ranks functions, and their packages, by the share of samples in which
they are the innermost Python frame."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from bench import wrk
from bench.processes import LOAD_CORE, Server


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    by_package: list[tuple[str, float]]  # package -> share of samples (self time)
    top_self: list[tuple[str, float]]


def _package(frame: str) -> str:
    """`function (asyncpg/connection.py:377)` -> `asyncpg`; a stdlib module keeps its name."""
    path = frame.rsplit("(", 1)[-1].rstrip(")").rsplit(":", 1)[0]
    return path.split("/", 1)[0].removesuffix(".py")


def summarize(collapsed: str, top: int = 12) -> Profile:
    self_counts: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        packages[_package(frames[-1])] += count

    def share(counter: collections.Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, value / total) for name, value in counter.most_common(n)] if total else []

    return Profile(total, share(packages, top), share(self_counts, top))


def profile(server: Server, path: str, seconds: float, connections: int) -> Profile:
    """Sample `server` for `seconds` while wrk drives `path` (after a 2 s warm-up)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("bench: py-spy not found (uv sync installs it with the dev tools)")
    wrk.run(server.base_url + path, seconds=2, connections=connections, core=LOAD_CORE)
    load = threading.Thread(
        target=wrk.run,
        args=(server.base_url + path,),
        kwargs={"seconds": seconds + 2, "connections": connections, "core": LOAD_CORE},
    )
    load.start()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        subprocess.run(
            ["taskset", "-c", str(LOAD_CORE), py_spy, "record", "--pid", str(server.process.pid),
             "--subprocesses", "--duration", str(round(seconds)), "--rate", "250",
             "--format", "raw", "--output", str(out), "--nonblocking"],
            check=True, capture_output=True, timeout=seconds + 60,
        )  # fmt: skip
        text = out.read_text()
    load.join()
    return summarize(text)
