"""A private, durable PostgreSQL a test may stop, kill and restart on the same port and data."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from devstack.servers import PostgresServer


class FaultyPostgres(PostgresServer):
    """`PostgresServer` with the faults an operator meets: fast and smart shutdowns, SIGKILL of
    one backend (the postmaster's crash restart) or of every process (a killed pod), restarts."""

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def stop_fast(self) -> None:
        """Sessions are terminated ("terminating connection due to administrator command")."""
        self.pg_ctl("stop", "-m", "fast", "-w")

    def begin_smart_shutdown(self) -> None:
        """Sessions carry on; every new connection hears "the database system is shutting
        down" until the last session ends and the server stops."""
        self.pg_ctl("stop", "-m", "smart", "-W")

    def start_again(self) -> None:
        """Start on the same data and port; after a kill this is crash recovery."""
        self.pg_ctl("start", "-w")

    def kill_everything(self) -> None:
        """SIGKILL the postmaster and every backend at once, as the kernel kills a pod."""
        postmaster = self.postmaster_pid()
        for pid in [postmaster, *children(postmaster)]:
            _kill(pid)
        deadline = time.monotonic() + 30
        while _alive(postmaster) or children(postmaster):
            if time.monotonic() > deadline:
                raise TimeoutError("PostgreSQL processes outlived SIGKILL")
            time.sleep(0.05)

    def wait_stopped(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (self.data / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("PostgreSQL did not stop")
            time.sleep(0.05)


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
