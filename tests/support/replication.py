"""A primary and a streaming standby on loopback, as a CloudNativePG cluster's two instances:
the standby cloned with pg_basebackup, the primary waiting for it on every commit
(synchronous_standby_names), and promotion as the operator performs it (pg_ctl promote)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from devstack.servers import LOOPBACK, PostgresServer
from tests.support.tcp_forwarder import TcpForwarder

STANDBY_NAME = "standby"
# One synchronous standby: a commit returns once the standby has flushed its WAL.
PRIMARY_SETTINGS = {
    "synchronous_standby_names": f"'FIRST 1 ({STANDBY_NAME})'",
    "synchronous_commit": "on",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "hot_standby": "on",
}


class StandbyServer(PostgresServer):
    """A server cloned from a running primary; streams from it until promoted."""

    def clone(self, primary_port: int) -> StandbyServer:
        self.root.chmod(0o755)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        conninfo = (
            f"host={LOOPBACK} port={primary_port} user=postgres application_name={STANDBY_NAME}"
        )
        # -R writes standby.signal and this primary_conninfo; -X stream takes the WAL along.
        self._run("pg_basebackup", "-D", str(self.data), "-d", conninfo, "-R", "-X", "stream",
                  "-c", "fast")  # fmt: skip
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={LOOPBACK}",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=200",
                "-c hot_standby=on",
                "-c wal_retrieve_retry_interval=200ms",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def promote(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")


@dataclass
class ReplicatedPostgres:
    primary: PostgresServer
    standby: StandbyServer
    # The standby reaches the primary through this, so a test can part them on purpose.
    replication_link: TcpForwarder

    def stop_primary(self) -> None:
        """The primary's pod is gone: no shutdown checkpoint, no goodbye to any client."""
        self.primary._run("pg_ctl", "-D", str(self.primary.data), "-m", "immediate", "-w", "stop")

    def wait_synchronous(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (STANDBY_NAME,),
                ).fetchone()
                if row is not None and row[0] == "sync":
                    return
                time.sleep(0.05)
        raise TimeoutError("the standby never became synchronous")


@contextmanager
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """A primary with one synchronous standby streaming from it. fsync stays off (no machine
    crashes here); what a failover tests is which commits the standby has."""
    primary = PostgresServer().start(settings=PRIMARY_SETTINGS)
    link = TcpForwarder(primary.port).start()
    standby = StandbyServer()
    try:
        standby.clone(link.port)
        pair = ReplicatedPostgres(primary, standby, link)
        pair.wait_synchronous()
        yield pair
    finally:
        standby.stop()
        link.close()
        primary.stop()
