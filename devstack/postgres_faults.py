"""A private, durable PostgreSQL to stop, kill and restart on the same port and data, and the
database faults the fault test and the memory benchmark hold under load, in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

from devstack.servers import PostgresServer

OUTAGE = 3.0  # seconds each fault is held
API_SESSIONS = (
    "SELECT pid FROM pg_stat_activity WHERE application_name IN ('tasks-api', 'stats-api')"
)


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


# A fault: (server, database, mark) -> None; `mark(phase)` names what happens from now on.
Mark = Callable[[str], None]


def _admin(server: FaultyPostgres, database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(server.url(database), autocommit=True)


async def _connect_error(url: str) -> str:
    """What a new connection hears right now (a real asyncpg error), or "connected"."""
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except Exception as exc:  # the error itself is what this reports
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return "connected"


def refused(server: FaultyPostgres, database: str, mark: Mark) -> None:
    """A fast shutdown (sessions cut), then nothing listens for OUTAGE seconds."""
    mark("refused")
    server.stop_fast()
    time.sleep(OUTAGE)
    server.start_again()


def shutting_down(server: FaultyPostgres, database: str, mark: Mark) -> None:
    """A smart shutdown held open by one session: the APIs' sessions are cut mid-use and every
    new connection hears "the database system is shutting down"."""
    blocker = _admin(server, database)
    server.begin_smart_shutdown()
    heard = asyncio.run(_connect_error(server.url(database)))
    if "shutting down" not in heard:
        raise AssertionError(f"expected 'shutting down', a new connection heard {heard!r}")
    mark("shutting-down")
    for (pid,) in blocker.execute(API_SESSIONS).fetchall():
        blocker.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(OUTAGE)
    blocker.close()
    server.wait_stopped()
    server.start_again()


def backend_killed(server: FaultyPostgres, database: str, mark: Mark) -> None:
    """SIGKILL of one backend: the postmaster ends every session and recovers from the WAL."""
    with _admin(server, database) as conn:
        pids = [row[0] for row in conn.execute(API_SESSIONS).fetchall()]
        if not pids:
            pids = [row[0] for row in conn.execute("SELECT pg_backend_pid()").fetchall()]
    mark("backend-killed")
    os.kill(int(pids[0]), signal.SIGKILL)
    time.sleep(OUTAGE)


def everything_killed(server: FaultyPostgres, database: str, mark: Mark) -> None:
    """SIGKILL of every PostgreSQL process (a killed pod), then crash recovery at start."""
    mark("killed")
    server.kill_everything()
    time.sleep(OUTAGE)
    mark("crash-recovery")
    server.start_again()


def pool_exhausted(server: FaultyPostgres, database: str, mark: Mark) -> None:
    """The tasks table locked for longer than a statement may take: statements time out, the
    pools run dry and requests wait their DB_POOL_TIMEOUT."""
    with _admin(server, database) as conn, conn.transaction():
        conn.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
        mark("locked")
        time.sleep(OUTAGE + 1)


FAULTS: tuple[Callable[[FaultyPostgres, str, Mark], None], ...] = (
    refused,
    shutting_down,
    backend_killed,
    everything_killed,
    pool_exhausted,
)
