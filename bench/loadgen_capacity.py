"""Capacity of the load generator itself: the highest arrival rate one process (one core)
sustains while its own scheduling lag stays within 2 ms at p99, for each HTTP client, and how
that scales with two processes; with the ratio to a ceiling measured in the same run.

Target: a minimal raw-asyncio HTTP/1.1 responder (keep-alive, fixed 2-byte JSON body) in its
own process. Ceiling: what `wrk` (closed loop, C, one thread, pinned to the generator's core)
gets from that responder; without wrk, a raw closed-loop asyncio client. The generator runs
as the real `loadgen run` command; each step is a fresh process of STEP_SECONDS at one rate.
A rate passes when lag p99 <= 2 ms, nothing was dropped, and >= 99 % of the rate was sent.

Usage: uv run python bench/loadgen_capacity.py [--step-seconds 3]   (about 2-3 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parent.parent
LAG_P99_LIMIT_MS = 2.0
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
CPUS = sorted(os.sched_getaffinity(0))
GENERATOR_CPU, SERVER_CPU = CPUS[0], CPUS[-1]
REALTIME_PRIORITY = 10


# --- the target: a raw asyncio responder ------------------------------------------------------


class Responder(asyncio.Protocol):
    """Answers every request head (no bodies: GETs only) with the fixed response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)


def serve(port: int) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Responder, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


@contextlib.contextmanager
def responder(cpu: int | None) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], preexec_fn=_pin(cpu)
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pin(cpu: int | None) -> Callable[[], None]:
    """Run on `cpu` at real-time priority when permitted (root): the figures then measure the
    generator, not whatever else shares the machine. Falls back to normal scheduling."""

    def setup() -> None:
        if cpu is not None and len(CPUS) > 1:
            os.sched_setaffinity(0, {cpu})
        with contextlib.suppress(PermissionError, OSError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))

    return setup


def realtime_allowed() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import os; print(os.sched_getscheduler(0) == os.SCHED_FIFO)"],
        preexec_fn=_pin(None), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return probe.stdout.strip() == "True"


# --- the ceiling ---------------------------------------------------------------------------------


def ceiling(url: str, seconds: float) -> tuple[str, float]:
    """Closed-loop requests/s one core gets from the responder: wrk, else a raw asyncio client."""
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{max(1, round(seconds))}s", url + "/tasks"],
            capture_output=True, text=True, check=True, preexec_fn=_pin(GENERATOR_CPU),
        ).stdout  # fmt: skip
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        return "wrk -t1 -c32 (closed loop)", float(match[1])
    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import loadgen_capacity as b; "
    )
    code += f"print(b.raw_closed_loop({url!r}, {seconds}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        preexec_fn=_pin(GENERATOR_CPU),
    ).stdout  # fmt: skip
    return "raw asyncio closed loop, 32 connections", float(out.strip())


def raw_closed_loop(url: str, seconds: float, connections: int = 32) -> float:
    import uvloop

    host, port = url.removeprefix("http://").split(":")
    request = f"GET /tasks HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    async def worker(deadline: float) -> int:
        reader, writer = await asyncio.open_connection(host, int(port))
        done = 0
        while time.monotonic() < deadline:
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
            done += 1
        writer.close()
        return done

    async def main() -> float:
        deadline = time.monotonic() + seconds
        counts = await asyncio.gather(*(worker(deadline) for _ in range(connections)))
        return sum(counts) / seconds

    return uvloop.run(main())


# --- the generator --------------------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    processes: int
    lag_p99_ms: float
    achieved: float
    dropped: int
    cpu: float

    @property
    def ok(self) -> bool:
        return (
            self.lag_p99_ms <= LAG_P99_LIMIT_MS
            and self.dropped == 0
            and self.achieved >= 0.99 * self.rate
        )


def run_step(url: str, rate: float, seconds: float, client: str, processes: int) -> Step:
    """`loadgen run` in `processes` processes at rate/processes each; reports merged exactly."""
    from loadgen.merge import load_reports, merge_reports

    with tempfile.TemporaryDirectory() as tmp:
        running = []
        for index in range(processes):
            report = Path(tmp) / f"r{index}.json"
            args = [
                sys.executable, "-m", "loadgen", "run", f"--tasks-url={url}", f"--stats-url={url}",
                "--mix=list=1", f"--stages={rate / processes:g}:{seconds:g}s", f"--client={client}",
                "--metrics-port=0", "--progress-interval=0", "--max-inflight=5000",
                "--p99-ms=100000", "--lag-bound-ms=1000", f"--report={report}",
            ]  # fmt: skip
            cpu = GENERATOR_CPU if processes == 1 else CPUS[index % len(CPUS)]
            process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=_pin(cpu),
            )
            running.append((report, process))
        for report, process in running:
            _, err = process.communicate(timeout=seconds + 60)
            if not report.exists():
                raise SystemExit(f"loadgen failed (exit {process.returncode}): {err.strip()}")
        merged = merge_reports([r for report, _ in running for r in load_reports(str(report))])
    return Step(
        rate=rate,
        processes=processes,
        lag_p99_ms=merged["schedule"]["lag_ms"]["p99"] or 0.0,
        achieved=merged["schedule"]["sent"] / merged["duration_s"],
        dropped=merged["schedule"]["dropped"],
        cpu=max(g["cpu_utilization"] for g in merged["generators"]),
    )


def capacity(
    url: str, seconds: float, client: str, processes: int, start: float, log: list[Step]
) -> float:
    """Double from `start` until a step fails, then bisect three times; the best passing rate."""
    best, rate, failed = 0.0, start, None
    for _ in range(6):
        step = run_step(url, rate, seconds, client, processes)
        log.append(step)
        _print_step(client, step)
        if not step.ok:
            failed = rate
            break
        best, rate = rate, rate * 2
    if failed is None:
        return best
    for _ in range(3):
        rate = round((best + failed) / 2, -1)
        step = run_step(url, rate, seconds, client, processes)
        log.append(step)
        _print_step(client, step)
        best, failed = (rate, failed) if step.ok else (best, rate)
    return best


def _print_step(client: str, step: Step) -> None:
    verdict = "ok" if step.ok else "over"
    print(
        f"  {client:<8} {step.processes} proc  {step.rate:>7.0f}/s  sent {step.achieved:>8.1f}/s  "
        f"lag p99 {step.lag_p99_ms:6.2f} ms  dropped {step.dropped:>5}  "
        f"cpu {step.cpu:4.2f}  {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    started = time.monotonic()
    realtime = realtime_allowed()
    print(
        f"cpus {CPUS}: generator pinned to {GENERATOR_CPU}, responder to {SERVER_CPU}; "
        f"real-time priority: {'yes' if realtime else 'no (figures include neighbours noise)'}"
    )
    log: list[Step] = []
    with responder(SERVER_CPU) as url:
        how, ceiling_rps = ceiling(url, 5.0)
        print(f"ceiling: {ceiling_rps:.0f} req/s ({how}, one core)")
        one = {
            client: capacity(url, args.step_seconds, client, 1, start, log)
            for client, start in (("aiohttp", 1000.0), ("httpx", 250.0))
        }
    with responder(None) as url:
        two = capacity(url, args.step_seconds, "aiohttp", 2, max(one["aiohttp"], 500.0), log)
    results = {
        "ceiling_rps": round(ceiling_rps),
        "ceiling_tool": how,
        "one_process_rps": one,
        "two_processes_rps": two,
        "realtime_priority": realtime,
        "seconds": round(time.monotonic() - started, 1),
    }
    print()
    print(f"{'generator':<32} {'req/s at lag p99 <= 2 ms':>26} {'ratio to ceiling':>17}")
    for client, rps in one.items():
        print(f"{client + ', 1 process (1 core)':<32} {rps:>26.0f} {rps / ceiling_rps:>17.3f}")
    print(f"{'aiohttp, 2 processes':<32} {two:>26.0f} {two / ceiling_rps:>17.3f}")
    scaling = two / one["aiohttp"] if one["aiohttp"] else 0.0
    print(
        f"2-process scaling: {scaling:.2f}x; "
        f"aiohttp/httpx: {one['aiohttp'] / max(one['httpx'], 1):.2f}x"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
