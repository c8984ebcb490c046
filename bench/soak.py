"""`python -m bench.soak` (`make soak`): the long soak. Both APIs as deployed (stats-api watching
the stand-in Kubernetes API) behind the web container's nginx and its exporter, on a durable
PostgreSQL and Redis, under a steady mixed loadgen
load (reads of both APIs, creates, completions, deletes) for --minutes. Prints every process's
RSS each --every seconds, then per process its first and last figure, its peak and its trend
(least-squares slope, MiB per hour) over the whole run and its second half: warming up grows,
a leak is a trend that does not flatten in the second half. The short soak in
CI, which checks files, sessions and Redis connections, is tests/e2e/test_soak.py."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import stack, steady_load
from bench.rss import RssWatch, trend_mib_per_hour

ROLES = ("supervisor", "worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30, help="length of the load")
    parser.add_argument("--rate", type=int, default=50, help="steady mixed rate, req/s")
    parser.add_argument("--every", type=float, default=30, help="seconds between printed rows")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    with stack(workdir) as running, RssWatch(running.pids, interval=args.every) as watch:
        columns = [(server, role) for server in running.pids for role in ROLES]
        print(f"{'minute':>7}" + "".join(f"{f'{s} {r}':>32}" for s, r in columns), flush=True)
        watch.phase = "soak"
        with steady_load(running.urls, args.rate, workdir):
            ends = time.monotonic() + args.minutes * 60
            while time.monotonic() < ends:
                time.sleep(args.every)
                latest = {(s.server, s.role): s for s in watch.samples[-len(columns) :]}
                # (the exporter has no worker: its column stays "-")
                minute = max((s.seconds for s in latest.values()), default=0.0) / 60
                cells = "".join(
                    f"{latest[c].rss_mib:>32.1f}" if c in latest else f"{'-':>32}" for c in columns
                )
                print(f"{minute:>7.1f}{cells}", flush=True)
    print()
    print(f"{'process':<34}{'first':>8}{'last':>8}{'peak':>8}{'trend MiB/h':>13}{'2nd half':>10}")
    for server, role in columns:
        series = watch.series(server, role)
        if not series:
            continue
        points = [(s.seconds, s.rss_mib) for s in series]
        trend, settled = trend_mib_per_hour(points), trend_mib_per_hour(points[len(points) // 2 :])
        print(
            f"{server + ' ' + role:<34}{series[0].rss_mib:>8.1f}{series[-1].rss_mib:>8.1f}"
            f"{max(s.rss_mib for s in series):>8.1f}{trend:>13.1f}{settled:>10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
