"""`make up` on free ports, started as a person runs it (the end-to-end tests' stack)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.servers import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240


@dataclass(frozen=True)
class MakeUp:
    process: subprocess.Popen[str]
    tasks_port: int
    stats_port: int
    output: str

    @property
    def urls(self) -> dict[str, str]:
        return {
            "tasks": f"http://127.0.0.1:{self.tasks_port}",
            "stats": f"http://127.0.0.1:{self.stats_port}",
        }


@contextlib.contextmanager
def running_make_up() -> Iterator[MakeUp]:
    tasks_port, stats_port = free_port(), free_port()
    env = {**os.environ, "TASKS_API_PORT": str(tasks_port), "STATS_API_PORT": str(stats_port)}
    process = subprocess.Popen(
        ["make", "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield MakeUp(process, tasks_port, stats_port, _read_until_up(process))
    finally:
        _stop(process)


def _read_until_up(process: subprocess.Popen[str]) -> str:
    """`make up` prints curl examples once both APIs answer /ready."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "curl" in line:
            break
    return "".join(lines)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
