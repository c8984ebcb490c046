"""Child processes of `make up` whose output lines are prefixed with the service they come from,
so the APIs, the migration and nginx stay readable when they print at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

WIDTH = 9  # "tasks-api", "stats-api", "migrate", "web"
_WRITE = threading.Lock()


def spawn(label: str, command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Popen with stdout and stderr relayed to ours, each line as `label | line`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    assert process.stdout is not None
    relay = threading.Thread(target=_relay, args=(label, process.stdout), daemon=True)
    relay.start()
    return process


def spawner(label: str) -> Any:
    """`spawn` bound to one label, in Popen's shape (for code that takes a Popen factory)."""

    def start(command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        return spawn(label, command, **popen)

    return start


def run(label: str, command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
    """Run to the end with labelled output; CalledProcessError when it fails."""
    process = spawn(label, command, cwd=cwd, env=env)
    if process.wait() != 0:
        raise subprocess.CalledProcessError(process.returncode, list(command))


def _relay(label: str, stream: IO[bytes]) -> None:
    prefix = f"{label:<{WIDTH}} | ".encode()
    out = sys.stdout.buffer
    for line in iter(stream.readline, b""):
        with _WRITE:
            out.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
            out.flush()
    stream.close()
