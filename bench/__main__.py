"""`python -m bench`: the side-by-side harness (`make bench`, `make bench-smoke`,
`make bench-record`). Prints one table; writes it with the machine, commit and command to
.run/bench/<date>/; `--record` also makes it the tracked reference (bench/reference.json)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from bench.report import document, table, write_reference, write_results
from bench.run import SERVERS, Options, data_access, log_to_stderr, profile_case, run
from bench.tracing_cost import cpu_ratios, tracing_cost

FULL_ROWS = (1_000, 1_000_000)
SMOKE_ROWS = (1_000,)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="1,000 tasks, short runs (about two minutes): the harness works",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the figures to bench/reference.json (README, deploy tests)",
    )
    parser.add_argument("--rows", type=int, nargs="+", help="data set sizes (tasks)")
    parser.add_argument("--seconds", type=float, help="measured seconds per case and round")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each measurement")
    parser.add_argument("--repeat", type=int, help="interleaved rounds; each case keeps its best")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=list(SERVERS),
        help="servers the ceiling app is measured on; it runs on the fastest",
    )
    parser.add_argument(
        "--api-server",
        choices=SERVERS,
        help="run the APIs' app factories on this server instead of their own "
        "entrypoint (to compare servers)",
    )
    parser.add_argument("--pool-size", type=int, help="DB_POOL_SIZE of the APIs (to compare)")
    parser.add_argument(
        "--data-access",
        action="store_true",
        help="instead of the table: /stats' query through the ORM, Core and asyncpg in one "
        "minimal app (bench/choices_app.py)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="instead of the table: the APIs with no trace exporter, exporting with 5 %% "
        "sampled, and exporting every trace; ratios to the untraced run (bench/tracing_cost.py)",
    )
    parser.add_argument(
        "--profile",
        metavar="CASE",
        help="instead of the table: where the server of CASE (e.g. stats-hit) "
        "spends its CPU under load, sampled by py-spy",
    )
    return parser.parse_args(argv)  # fmt: skip


def options(args: argparse.Namespace) -> Options:
    smoke = args.smoke
    return Options(
        rows=args.rows or (SMOKE_ROWS if smoke else FULL_ROWS),
        seconds=args.seconds or (3 if smoke else 10),
        warmup=args.warmup or (1 if smoke else 3),
        connections=args.connections,
        repeat=args.repeat or (1 if smoke else 2),
        servers=args.servers,
        log=log_to_stderr,
        api_server=args.api_server,
        pool_size=args.pool_size,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.record and args.smoke:
        sys.exit("bench: --record takes the full run, not --smoke")
    started = time.monotonic()
    opts = options(args)
    if args.profile:
        return print_profile(args.profile, opts)
    if args.tracing:
        results = tracing_cost(opts)
        print(table(results))
        print("\n" + "\n".join(cpu_ratios(results)))
        return 0
    if args.data_access:
        print(table(data_access(opts.servers[-1], opts)))
        return 0
    ceiling_server, results = run(opts)
    text = table(results)
    command = shlex.join(["python", "-m", "bench", *argv])
    doc = document(results, command, {"ceiling_server": ceiling_server,
                                      "options": {"rows": list(opts.rows), "seconds": opts.seconds,
                                                  "warmup": opts.warmup, "repeat": opts.repeat,
                                                  "connections": opts.connections}})  # fmt: skip
    folder = write_results(doc, text)
    print(
        f"\nceiling app on {ceiling_server}; wrk -t1 -c{opts.connections}; "
        f"{opts.seconds:g} s per case after {opts.warmup:g} s warm-up, best of {opts.repeat}\n"
    )
    print(text)
    missed = [r for r in results if r.met is False]
    print(f"\n{len(missed)} target(s) missed" if missed else "\nevery target met")
    print(f"results: {folder.relative_to(folder.parents[2])}  ({time.monotonic() - started:.0f} s)")
    if args.record:
        write_reference(doc)
        print("recorded: bench/reference.json")
    return 0


def print_profile(key: str, opts: Options) -> int:
    case, found = profile_case(key, opts.rows[0], max(opts.seconds, 10), opts)
    print(f"\n{case.endpoint} [{case.app.value}], {found.samples} samples")
    for title, rows in (("by package (innermost frame)", found.by_package),
                        ("functions (innermost frame)", found.top_self)):  # fmt: skip
        print(f"\n{title}:")
        for name, share in rows:
            print(f"  {share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
