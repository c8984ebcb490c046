"""Throwaway PostgreSQL and Redis servers on free loopback ports, from the machine's binaries.

Used by `make up` and by the test session. PostgreSQL refuses to run as root, so as root the
server side runs as the `postgres` system user on a data directory it owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import redis

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: object, timeout: float, what: str) -> None:
    """Poll `check()` until it is truthy or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:  # any failure means "not yet"
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s: {last!r}")


def stop_process(process: subprocess.Popen[Any], grace: float = 30) -> None:
    """SIGTERM, wait up to `grace` seconds for a drain, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def postgres_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        found = shutil.which("pg_ctl")
        if found is None:
            raise FileNotFoundError(
                "PostgreSQL server binaries not found (apt-get install postgresql)"
            )
        return Path(found).parent
    return candidates[-1].parent


class PostgresServer:
    """A private PostgreSQL cluster; `url(db)` gives a psycopg-style URL to one of its databases.

    Without a password it trusts every connection (a throwaway server on loopback); with one,
    TCP connections must give it (scram-sha-256) and only its own Unix socket is trusted.
    """

    def __init__(
        self, base: Path | None = None, port: int | None = None, password: str | None = None
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="taskflow-pg-", dir=base))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = port or free_port()
        self.password = password or None
        self.bindir = postgres_bindir()
        self._as_postgres = os.geteuid() == 0

    def start(
        self,
        max_connections: int = 200,
        durable: bool = False,
        settings: Mapping[str, str] | None = None,
    ) -> PostgresServer:
        """Start the cluster; fast and crash-unsafe unless `durable` (the cluster's settings);
        `settings` are further `-c name=value` options (a replication test's, say)."""
        self.root.chmod(0o755)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", *self._auth())
        finally:
            (self.root / "pwfile").unlink(missing_ok=True)
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={LOOPBACK}",
                f"-c unix_socket_directories={self.root}",
                f"-c max_connections={max_connections}",
                "-c shared_buffers=128MB"
                if durable
                else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                *(f"-c {name}={value}" for name, value in (settings or {}).items()),
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(
        self, database: str = "postgres", driver: str = "postgresql", *, secret: bool = True
    ) -> str:
        """The URL of `database`, with the password unless `secret` is False (for display)."""
        password = f":{quote(self.password, safe='')}" if self.password and secret else ""
        return f"{driver}://postgres{password}@{LOOPBACK}:{self.port}/{database}"

    def _auth(self) -> list[str]:
        if self.password is None:
            return ["--auth=trust"]
        # initdb reads the password from a file (never argv, which `ps` shows), then it goes.
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        return ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]

    def create_database(self, name: str, template: str = "template0") -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self.bindir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{log[-2000:]}")


class RedisServer:
    """A private redis-server process that tests may freeze, stop and restart on the same port."""

    def __init__(self, persistence: bool = False, port: int | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="taskflow-redis-"))
        self.port = port or free_port()
        self.persistence = persistence
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found (apt-get install redis-server)")
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistence else []
        command = [
            binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
            *persistence,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        wait_until(client.ping, 10, f"redis on port {self.port}")
        client.close()
        return self

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            stop_process(self.process, grace=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
