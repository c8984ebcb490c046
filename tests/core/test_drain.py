"""SIGTERM to a real API process (no proxy in between): what clients on open keep-alive
connections get while it drains, and that it exits 0 with its connections closed."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from urllib.parse import urlsplit

import psycopg
import redis
from taskflow_core.plugin import SHUTDOWN_MESSAGE
from taskflow_core.server import WORKER_STOP_SECONDS

from tests.support.apiserver import api_server, service_env

DRAIN = 2.0  # DRAIN_SECONDS for these runs: short, the default is 5
# granian kills a worker still alive WORKER_STOP_SECONDS after the drain window: an exit before
# that was graceful. (Its "refused to gracefully stop" line alone proves nothing: the
# supervisor can print it for a worker that has just exited, when its watcher thread reaps it.)
EXIT_BOUND = DRAIN + WORKER_STOP_SECONDS


def connect(base_url: str) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.connect()
    return conn


def call(
    conn: http.client.HTTPConnection, method: str, path: str, body: object = None
) -> tuple[int, dict[str, str], bytes]:
    payload = None if body is None else json.dumps(body).encode()
    headers = {} if payload is None else {"Content-Type": "application/json"}
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def raw_connection(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    return socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5)


def until_closed(sock: socket.socket, request: bytes) -> bytes:
    """Everything the server sends after `request` until it closes the connection."""
    sock.sendall(request)
    received = b""
    while chunk := sock.recv(65536):  # a timeout here means the server kept it open
        received += chunk
    return received


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: api\r\n\r\n"


def own_sessions(database_url: str) -> int:
    """Sessions of the APIs on this test's database (its name is unique to the test)."""
    database = database_url.rpartition("/")[2]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name LIKE 'tasks-api%%'",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def redis_clients(redis_url: str, ports: set[int]) -> int:
    with redis.Redis.from_url(redis_url) as client:
        listed = client.client_list()
    return sum(1 for c in listed if int(str(c["addr"]).rpartition(":")[2]) in ports)


def test_keep_alive_requests_after_sigterm_are_answered_with_connection_close(
    database_url: str, redis_url: str
) -> None:
    env = service_env(database_url, REDIS_URL=redis_url, DRAIN_SECONDS=str(DRAIN), LOG_LEVEL="INFO")
    others = redis_ports(redis_url)
    with api_server("tasks_api", env) as server:
        reader, writer = connect(server.base_url), connect(server.base_url)
        raw = raw_connection(server.base_url)
        raw.sendall(GET_HEALTH)
        assert raw.recv(65536).startswith(b"HTTP/1.1 200")  # kept alive afterwards
        status, headers, _ = call(reader, "GET", "/tasks?limit=1")
        assert (status, headers.get("connection")) == (200, None)
        assert call(writer, "POST", "/tasks", {"title": "before"})[0] == 201
        assert own_sessions(database_url) >= 1
        worker_ports = redis_ports(redis_url) - others
        assert worker_ports  # the cache is in use: there are connections to close

        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.3)  # the drain notice reaches the worker

        # Requests on connections opened before SIGTERM: full answers that close the connection.
        status, headers, body = call(reader, "GET", "/tasks?limit=1")
        assert status == 200, body
        assert headers["connection"] == "close"
        assert json.loads(body)["items"][0]["title"] == "before"
        status, headers, body = call(writer, "POST", "/tasks", {"title": "while draining"})
        assert status == 201, body
        assert headers["connection"] == "close"
        assert json.loads(body)["title"] == "while draining"

        # The server itself closes the connection once that answer is out.
        answer = until_closed(raw, GET_HEALTH)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer
        assert b"\r\nconnection: close" in head.lower()
        assert json.loads(body) == {"status": "ok"}

        # A new connection is still served, and readiness says: send nothing more here.
        probe = connect(server.base_url)
        status, headers, body = call(probe, "GET", "/ready")
        assert status == 503
        assert json.loads(body)["status"] == "draining"
        assert headers["connection"] == "close"

        assert server.process.wait(EXIT_BOUND + 5) == 0
        elapsed = time.monotonic() - signalled
        assert DRAIN <= elapsed < EXIT_BOUND - 1, elapsed
        log = server.log()
        assert SHUTDOWN_MESSAGE in log, log
        # The lifespan shutdown closed the request pool and the Redis connections.
        assert own_sessions(database_url) == 0
        assert redis_clients(redis_url, worker_ports) == 0
        for conn in (reader, writer, probe):
            conn.close()
        raw.close()


def redis_ports(redis_url: str) -> set[int]:
    """Client ports of every Redis connection but the one asking."""
    with redis.Redis.from_url(redis_url) as client:
        me = client.client_id()
        listed = client.client_list()
    return {int(str(c["addr"]).rpartition(":")[2]) for c in listed if int(c["id"]) != me}
