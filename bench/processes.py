"""Server processes pinned to one core, and what they cost: CPU seconds and RSS of the whole
process tree (a server may run its app in a child process) read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.servers import LOOPBACK, free_port, stop_process, wait_until

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CORES = sorted(os.sched_getaffinity(0))
# The server gets the first core; wrk, PostgreSQL and Redis share the other.
SERVER_CORE, LOAD_CORE = CORES[0], CORES[-1]


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_seconds: float
    rss_bytes: int


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def tree_usage(pid: int) -> Usage:
    """CPU (user + system) and RSS summed over `pid` and its descendants."""
    children, pending, cpu, rss = _children(), [pid], 0.0, 0
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss += int(fields[21]) * PAGE_BYTES
        pending.extend(children.get(current, []))
    return Usage(cpu, rss)


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def usage(self) -> Usage:
        return tree_usage(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def pinned_server(
    name: str, command: Sequence[str], env: Mapping[str, str], ready_path: str
) -> Iterator[Server]:
    """`command` (a Python module and its arguments) on SERVER_CORE, HOST/PORT set, until done."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    full_env = {**env, "HOST": LOOPBACK, "PORT": str(port)}
    argv = [arg.replace("{port}", str(port)) for arg in command]
    process = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CORE), sys.executable, *argv],
        env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Server(name, f"http://{LOOPBACK}:{port}", process, Path(log.name))
    try:
        wait_until(
            lambda: (
                process.poll() is None
                and httpx.get(server.base_url + ready_path, timeout=2).status_code == 200
            ),
            60,
            f"{name} ({server.log_tail()})",
        )
        yield server
    finally:
        stop_process(process)
        log.close()
        Path(log.name).unlink(missing_ok=True)


@contextmanager
def on_load_core() -> Iterator[None]:
    """Processes started inside inherit the load core (PostgreSQL, Redis)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {LOAD_CORE})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def settle(seconds: float = 0.5) -> None:
    time.sleep(seconds)
