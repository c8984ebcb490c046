"""`make up` on free ports, started as a person runs it (the end-to-end tests' stack)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack.servers import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240


@dataclass
class MakeUp:
    process: subprocess.Popen[str]
    tasks_port: int
    stats_port: int
    web_port: int
    web_metrics_port: int
    banner: str
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        """Everything `make up` printed so far (banner, then the servers' logs)."""
        return "".join(self.lines)

    @property
    def urls(self) -> dict[str, str]:
        return {
            "tasks": f"http://127.0.0.1:{self.tasks_port}",
            "stats": f"http://127.0.0.1:{self.stats_port}",
            "web": f"http://127.0.0.1:{self.web_port}",
            "web_metrics": f"http://127.0.0.1:{self.web_metrics_port}",
        }

    @property
    def ports(self) -> list[int]:
        return [self.tasks_port, self.stats_port, self.web_port, self.web_metrics_port]


@contextlib.contextmanager
def running_make_up(extra_env: Mapping[str, str] | None = None) -> Iterator[MakeUp]:
    free = {
        name: str(free_port())
        for name in ("TASKS_API_PORT", "STATS_API_PORT", "WEB_PORT", "WEB_METRICS_PORT")
    }
    env = {**os.environ, **free, **(extra_env or {})}  # ports given in extra_env win
    ports = {name: int(env[name]) for name in free}
    process = subprocess.Popen(
        ["make", "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    reader: threading.Thread | None = None
    try:
        lines = _read_until_up(process)
        if not any("try: curl" in line for line in lines):
            raise RuntimeError("make up did not come up:\n" + "".join(lines)[-4000:])
        stack = MakeUp(
            process,
            ports["TASKS_API_PORT"],
            ports["STATS_API_PORT"],
            ports["WEB_PORT"],
            ports["WEB_METRICS_PORT"],
            "".join(lines),
            lines,
        )
        # Keep reading: a full pipe would block the servers' logging, and tests read the logs.
        reader = threading.Thread(target=_drain, args=(process, lines), daemon=True)
        reader.start()
        yield stack
    finally:
        _stop(process)
        if reader is not None:
            reader.join(10)  # `lines` then holds everything make up printed, shutdown included


def _read_until_up(process: subprocess.Popen[str]) -> list[str]:
    """`make up` prints its curl example last, once every server answers."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "try: curl" in line:
            break
    return lines


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
