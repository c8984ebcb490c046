"""Stand-ins for a Kubernetes Service in front of several API instances: the project's nginx
template (services/web) with an upstream of several servers that the test changes by reload, and
API instances started, probed and stopped as the kubelet does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack.servers import LOOPBACK, free_port, stop_process, wait_until
from devstack.web import nginx_binary, render_config
from tests.support.apiserver import spawn_api

REPO = Path(__file__).resolve().parents[2]
# Rendered into the template, then replaced by the upstream's real members.
_PLACEHOLDERS = {"tasks": f"{LOOPBACK}:1", "stats": f"{LOOPBACK}:2"}


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return {int(child) for child in path.read_text().split()}
    except OSError:
        return set()


@dataclass
class Instance:
    """One API process (one pod): granian's supervisor and its worker on a loopback port."""

    module: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.module} exited with {self.process.returncode}:\n{self.log()}"
            )
        try:
            return httpx.get(f"http://{self.address}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def readiness(self) -> int | str:
        """/ready's status, or why there was none."""
        try:
            return httpx.get(f"http://{self.address}/ready", timeout=2).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__

    def worker_ports(self) -> set[int]:
        """Local ports of the TCP connections the worker holds (to PostgreSQL, Redis)."""
        inodes: set[str] = set()
        for pid in children(self.process.pid):
            fd_dir = Path(f"/proc/{pid}/fd")
            for fd in fd_dir.iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        ports: set[int] = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rpartition(":")[2], 16))
        return ports

    def remove(self) -> None:
        stop_process(self.process, grace=40)
        self.log_path.unlink(missing_ok=True)


def start_instance(module: str, env: Mapping[str, str]) -> Instance:
    process, port, log_path = spawn_api(module, env)
    return Instance(module, port, process, log_path)


def wait_ready(instances: Sequence[Instance], timeout: float = 90) -> None:
    for instance in instances:
        wait_until(instance.ready, timeout, f"{instance.module} on {instance.address}")


class Gateway:
    """nginx on the services/web template, `/api/tasks` and `/api/stats` balanced round-robin
    over the given instances, keep-alive to them, and no retry on another member
    (`proxy_next_upstream off`: a Kubernetes Service does not retry either); no keep-alive
    towards clients. The access log
    (JSON lines) also records each upstream answer's `Connection` header."""

    def __init__(self) -> None:
        self.port = free_port()
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="taskflow-gateway-"))
        self.config = render_config(
            self.port, _PLACEHOLDERS["tasks"], _PLACEHOLDERS["stats"], self.runtime_dir, free_port()
        )
        template = self.config.read_text()
        for old, new in (
            ("proxy_http_version 1.1;", "proxy_http_version 1.1;\n    proxy_next_upstream off;"),
            # A reload (this stand-in's endpoints update) closes idle client connections, a race
            # between the test's client and nginx that a Service never has: clients get one
            # connection per request; nginx keeps its keep-alive connections to the APIs.
            ("keepalive_timeout 65s;", "keepalive_timeout 0;"),
            (
                '"upstream_status":"$upstream_status",',
                '"upstream_status":"$upstream_status",'
                '"upstream_connection":"$upstream_http_connection",',
            ),
        ):
            assert template.count(old) == 1, old
            template = template.replace(old, new)
        self.template = template
        self.log_path = self.runtime_dir / "nginx.log"
        self.nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, members: Mapping[str, Sequence[Instance]]) -> Gateway:
        self._write(members)
        command = [nginx_binary(), "-e", "stderr", "-c", str(self.config)]
        if os.geteuid() == 0:
            command += ["-g", "user root;"]  # workers must read the checkout, as devstack.web
        with self.log_path.open("ab") as log:
            self.nginx = subprocess.Popen(command, cwd=self.runtime_dir, stdout=log, stderr=log)
        wait_until(
            lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200, 15, "nginx"
        )
        return self

    def reload(self, members: Mapping[str, Sequence[Instance]]) -> None:
        """New members, as an endpoints update: returns once no old worker is left, so nothing
        reaches an instance that left (its keep-alive connections close with those workers)."""
        assert self.nginx is not None
        self._write(members)
        old = children(self.nginx.pid)
        self.nginx.send_signal(signal.SIGHUP)
        pid = self.nginx.pid
        wait_until(lambda: children(pid) and not old & children(pid), 30, "nginx reload")

    def access_log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> None:
        if self.nginx is not None:
            stop_process(self.nginx, grace=10)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def _write(self, members: Mapping[str, Sequence[Instance]]) -> None:
        text = self.template
        for service, placeholder in _PLACEHOLDERS.items():
            servers = "\n        ".join(f"server {i.address};" for i in members[service])
            text = text.replace(f"server {placeholder};", servers)
        self.config.write_text(text)
