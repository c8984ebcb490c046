"""`python -m bench --tracing`: what the APIs' tracing costs, each API measured as deployed with
no exporter (no tracing wired), then exporting over OTLP/HTTP to a loopback receiver with the
loadtest overlay's sampling (parent-based, 5 % of new traces), then sampling every trace; rounds
interleaved, each variant keeps its best, every ratio against the untraced run of the same case."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.datastores import datastores, seeded_database
from bench.processes import Server, pinned_server
from bench.report import Result
from bench.run import Options, api_command, api_env, measure
from bench.scenarios import API_CASES, Case

# A cached page, cached /stats, an uncached page and a write: spans differ in their children.
CASE_KEYS = ("page-hit", "stats-hit", "page-miss", "post")
UNTRACED = "no exporter"
VARIANTS: dict[str, dict[str, str]] = {
    UNTRACED: {},
    "exporting, 5 % sampled": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                               "OTEL_TRACES_SAMPLER_ARG": "0.05"},
    "exporting, all sampled": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}  # fmt: skip


class _Receiver(BaseHTTPRequestHandler):
    """Takes every OTLP/HTTP export and answers 200 (what a collector does, minus storage)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def otlp_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def tracing_cost(opts: Options) -> list[Result]:
    rows = opts.rows[0]
    cases = [c for c in API_CASES if c.key in CASE_KEYS]
    best: dict[tuple[str, str], Result] = {}
    with datastores() as stores, otlp_receiver() as endpoint:
        database_url = seeded_database(stores, rows)
        for round_number in range(opts.repeat):
            for case in sorted(cases, key=lambda c: c.writes):
                if case.writes and round_number < opts.repeat - 1:
                    continue  # writes grow the table: once, after every read
                for variant, extra in VARIANTS.items():
                    env = api_env(case.app, database_url, stores.redis.url, opts)
                    if extra:
                        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **extra}
                    with _server(case, variant, env, opts) as server:
                        result = measure(server, case, rows, opts, case.path)
                    opts.log(
                        f"  {case.endpoint} [{case.app.value}, {variant}]: "
                        f"{result.rate:,.0f} req/s, CPU {result.cpu_ms:.3f} ms/req"
                    )
                    known = best.get((case.key, variant))
                    if known is None or result.rate > known.rate:
                        best[(case.key, variant)] = result
    return [_compared(best, case, variant) for case in cases for variant in VARIANTS]


@contextmanager
def _server(case: Case, variant: str, env: dict[str, str], opts: Options) -> Iterator[Server]:
    name = f"{case.app.value}-{variant}".replace(" ", "-").replace("%", "pct").replace(",", "")
    with pinned_server(name, api_command(case.app, opts), env, "/ready") as server:
        yield server


def _compared(best: dict[tuple[str, str], Result], case: Case, variant: str) -> Result:
    result = best[(case.key, variant)]
    base = best[(case.key, UNTRACED)]
    return replace(
        result,
        key=f"{case.key}:{variant}",
        endpoint=f"{case.endpoint} [{variant}]",
        ceiling=None if variant == UNTRACED else f"{case.key} {UNTRACED}",
        ratio=None if variant == UNTRACED else result.rate / base.rate,
    )


def cpu_ratios(results: list[Result]) -> list[str]:
    """One line per traced variant: its CPU per request against the untraced run's."""
    base = {r.key.split(":")[0]: r for r in results if r.key.endswith(f":{UNTRACED}")}
    lines = []
    for r in results:
        case = r.key.split(":")[0]
        if r.key.endswith(f":{UNTRACED}") or not base[case].cpu_ms:
            continue
        lines.append(f"{r.endpoint}: req/s {r.ratio or 0:.2f}x, "
                     f"CPU/request {r.cpu_ms / base[case].cpu_ms:.2f}x of untraced")  # fmt: skip
    return lines
