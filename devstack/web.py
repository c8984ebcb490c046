"""The web entry point for `make up`: the machine's nginx on the one template services/web ships,
rendered by the same script the image runs, plus Debian's prometheus-nginx-exporter."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from devstack.servers import LOOPBACK, free_port, stop_process, wait_until

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "services" / "web"
STATIC_ROOT = WEB / "static"
RENDER = WEB / "render-config.sh"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
EXPORTER = "prometheus-nginx-exporter"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((c for c in NGINX_CANDIDATES if Path(c).is_file()), None)
    if found is None:
        raise FileNotFoundError("nginx not found (apt-get install nginx)")
    return found


def exporter_binary() -> str:
    found = shutil.which(EXPORTER) or shutil.which(EXPORTER, path="/usr/bin:/usr/sbin")
    if found is None:
        raise FileNotFoundError(f"{EXPORTER} not found (apt-get install {EXPORTER})")
    return found


def render_config(
    port: int,
    tasks_address: str,
    stats_address: str,
    runtime_dir: Path,
    status_port: int,
    static_root: Path = STATIC_ROOT,
) -> Path:
    """services/web/render-config.sh with make up's values; returns the rendered file."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": LOOPBACK,
        "PORT": str(port),
        "STATUS_PORT": str(status_port),
        "TASKS_API_ADDRESS": tasks_address,
        "STATS_API_ADDRESS": stats_address,
        "STATIC_ROOT": str(static_root),
        "RUNTIME_DIR": str(runtime_dir),
    }
    result = subprocess.run(
        ["sh", str(RENDER)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"{RENDER} failed")
    return Path(result.stdout.strip())


class WebServer:
    """nginx in the foreground on 127.0.0.1:`port`, proxying /api/... to the two APIs."""

    def __init__(
        self,
        port: int,
        tasks_address: str,
        stats_address: str,
        metrics_port: int | None = None,
        static_root: Path = STATIC_ROOT,
        output: int | None = None,
    ) -> None:
        self.port = port
        self.output = output  # where nginx's logs go (subprocess's stdout/stderr); None: ours
        self.status_port = free_port()
        self.metrics_port = metrics_port
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="taskflow-web-"))
        self.config = render_config(
            port, tasks_address, stats_address, self.runtime_dir, self.status_port, static_root
        )
        self.nginx: subprocess.Popen[bytes] | None = None
        self.exporter: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        command = [nginx_binary(), "-e", "stderr", "-c", str(self.config)]
        if os.geteuid() == 0:
            # A root master would hand the workers to `nobody`, who may not read the checkout.
            command += ["-g", "user root;"]
        return command

    def start(self, spawn: Any = None) -> WebServer:
        """`spawn` starts nginx (Popen's shape: `make up` labels its output); else `output`."""
        if spawn is None:
            self.nginx = subprocess.Popen(
                self.command(), cwd=self.runtime_dir, stdout=self.output, stderr=self.output
            )
        else:
            self.nginx = spawn(self.command(), cwd=self.runtime_dir)
        wait_until(self._healthy, 15, f"nginx on port {self.port}")
        if self.metrics_port is not None:
            self.exporter = subprocess.Popen(
                [
                    exporter_binary(),
                    f"--nginx.scrape-uri=http://{LOOPBACK}:{self.status_port}/stub_status",
                    f"--web.listen-address={LOOPBACK}:{self.metrics_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        return self

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.nginx, self.exporter) if p is not None]

    def _healthy(self) -> bool:
        assert self.nginx is not None
        if self.nginx.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.nginx.returncode}")
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def stop(self) -> None:
        for process in (self.exporter, self.nginx):
            if process is not None:
                stop_process(process, grace=10)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
