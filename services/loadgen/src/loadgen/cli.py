"""`loadgen run` and `loadgen merge`; every flag also reads from a LOADGEN_* environment variable.

Exit codes: 0 every threshold met, 1 a threshold breached,
2 bad configuration or a target unreachable at start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from loadgen.config import (
    DEFAULT_MERGED,
    DEFAULT_MIX,
    DEFAULT_REPORT,
    PROFILES,
    ConfigError,
    RunConfig,
    Thresholds,
    check_url,
    parse_duration,
    parse_limit,
    parse_mix,
    parse_stages,
)
from loadgen.merge import LOG_PREFIX, load_reports, merge_reports
from loadgen.report import render_table
from loadgen.transport import CLIENTS

EXIT_PASSED, EXIT_BREACHED, EXIT_CONFIG = 0, 1, 2
ENV_PREFIX = "LOADGEN_"


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _seconds(text: str) -> float:
    return parse_duration(text)


class _Parser(argparse.ArgumentParser):
    """Errors are one line and exit 2, for people and for Job logs alike."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"loadgen: error: {message}\n")


# (flag, type, default, help); the environment variable is LOADGEN_ + flag in upper snake case
Option = tuple[str, Callable[[str], Any], Any, str]

RUN_OPTIONS: list[Option] = [
    ("--tasks-url", str, "http://127.0.0.1:8000", "tasks-api base URL"),
    ("--stats-url", str, "http://127.0.0.1:8001", "stats-api base URL"),
    ("--profile", str, "smoke", f"one of {', '.join(PROFILES)}; sets the default stages"),
    ("--stages", str, None, "RATE:DURATION,... (e.g. 50:1m,200:2m); overrides the profile's"),
    ("--mix", str, DEFAULT_MIX, "weights per operation: list,high,pending,stats,create,..."),
    ("--p99-ms", str, "300", "p99 limit in ms per endpoint: 300 or 300,stats=200"),
    ("--max-error-rate", str, "0.005", "error-rate limit per endpoint: 0.005 or 0.005,create=0.01"),
    ("--max-miss-rate", float, 0.001, "limit on schedule misses (late + dropped) / scheduled"),
    ("--max-inflight", int, 1000, "in-flight cap; a send that finds it full is dropped (a miss)"),
    ("--lag-bound-ms", float, 25.0, "a send leaving later than this after its time is late"),
    ("--timeout", _seconds, 10.0, "per-request timeout (s)"),
    ("--client", str, "aiohttp", f"HTTP client: {', '.join(CLIENTS)}"),
    ("--loop", str, "uvloop", "event loop: uvloop or asyncio"),
    ("--seed", int, None, "seed of the mix's random choice"),
    (
        "--trace-fraction",
        float,
        0.0,
        "share of requests (0..1) sent with a sampled W3C "
        "traceparent; the slowest of them are listed with their trace ids",
    ),
    ("--max-own-tasks", int, 1000, "most tasks this generator keeps; writes touch only these"),
    ("--cleanup", _bool, True, "delete the generator's remaining tasks at the end"),
    ("--report", str, DEFAULT_REPORT, "JSON report path, folders created ('' for none)"),
    ("--created-ids", str, "", "append the id of every create answered 201 here, one a line"),
    ("--print-json", _bool, False, f"also print the report as one '{LOG_PREFIX.strip()}' line"),
    ("--metrics-port", int, 9100, "/metrics port for Prometheus (0 disables)"),
    ("--progress-interval", _seconds, 5.0, "seconds between progress lines (0: none)"),
    ("--wait-ready", _seconds, 0.0, "wait up to this long for both APIs' /ready (0: one /health)"),
    ("--observe-after", _seconds, 0.0, "keep watching the HPAs this long after the load"),
    ("--namespace", str, None, "namespace of the HPAs (default: the pod's namespace)"),
    ("--kube-api", str, None, "API server URL without auth (e.g. kubectl proxy); else in-cluster"),
]

MERGE_OPTIONS: list[Option] = [
    ("--output", str, DEFAULT_MERGED, "merged report path, folders created"),
    ("--p99-ms", str, None, "re-evaluate with this p99 limit (default: the reports')"),
    ("--max-error-rate", str, None, "re-evaluate with this error-rate limit"),
    ("--max-miss-rate", float, None, "re-evaluate with this schedule-miss limit"),
    (
        "--print-json",
        _bool,
        False,
        f"also print the merged report as one '{LOG_PREFIX.strip()}' line",
    ),
]


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loadgen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="generate load, report, judge the thresholds")
    merge = commands.add_parser("merge", help="combine reports of several generators exactly")
    merge.add_argument("inputs", nargs="+", help="report JSON files or logs with report lines")
    for sub, options in ((run, RUN_OPTIONS), (merge, MERGE_OPTIONS)):
        for flag, _type, default, text in options:
            names = [flag, "-o"] if flag == "--output" else [flag]
            env_help = f"{text} [env {env_name(flag)}; default {default!r}]"
            if _type is _bool:
                sub.add_argument(*names, action=argparse.BooleanOptionalAction, help=env_help)
            else:
                sub.add_argument(*names, type=_type, help=env_help)
    return parser


def resolve(
    args: argparse.Namespace, options: Sequence[Option], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Flag given > LOADGEN_* variable > default; a bad variable is a ConfigError naming it."""
    values: dict[str, Any] = {}
    for flag, _type, default, _ in options:
        dest = flag.lstrip("-").replace("-", "_")
        value = getattr(args, dest)
        if value is None and env_name(flag) in environ:
            try:
                value = _type(environ[env_name(flag)])
            except ValueError as exc:
                raise ConfigError(f"{env_name(flag)}: {exc}") from None
        values[dest] = default if value is None else value
    return values


def run_config(values: Mapping[str, Any]) -> RunConfig:
    profile = values["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"--profile: {profile!r} is not one of {', '.join(PROFILES)}")
    if values["client"] not in CLIENTS:
        raise ConfigError(f"--client: {values['client']!r} is not one of {', '.join(CLIENTS)}")
    if values["loop"] not in ("uvloop", "asyncio"):
        raise ConfigError(f"--loop: {values['loop']!r} is not uvloop or asyncio")
    for flag in ("max_inflight", "max_own_tasks"):
        if values[flag] < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1")
    if not 0 <= values["metrics_port"] <= 65535:
        raise ConfigError("--metrics-port must be 0..65535")
    if values["timeout"] <= 0:
        raise ConfigError("--timeout must be > 0")
    if not 0 <= values["trace_fraction"] <= 1:
        raise ConfigError("--trace-fraction must be between 0 and 1")
    return RunConfig(
        tasks_url=check_url(values["tasks_url"], "--tasks-url"),
        stats_url=check_url(values["stats_url"], "--stats-url"),
        profile=profile,
        stages=parse_stages(values["stages"] or PROFILES[profile]),
        mix=parse_mix(values["mix"]),
        thresholds=_thresholds(values, fallback=None),
        max_inflight=values["max_inflight"],
        lag_bound=values["lag_bound_ms"] / 1000.0,
        timeout=values["timeout"],
        client=values["client"],
        loop=values["loop"],
        seed=values["seed"],
        max_own_tasks=values["max_own_tasks"],
        cleanup=values["cleanup"],
        report=values["report"] or None,
        created_ids=values["created_ids"] or None,
        print_json=values["print_json"],
        metrics_port=values["metrics_port"],
        progress_interval=values["progress_interval"],
        wait_ready=values["wait_ready"],
        observe_after=values["observe_after"],
        namespace=values["namespace"],
        trace_fraction=values["trace_fraction"],
    )


def _thresholds(values: Mapping[str, Any], fallback: Thresholds | None) -> Thresholds:
    """Flags win; without a flag the fallback's (merge: the reports') limit stays."""
    p99, errors, misses = values["p99_ms"], values["max_error_rate"], values["max_miss_rate"]
    if fallback is not None:
        return Thresholds(
            parse_limit(p99, "--p99-ms") if p99 is not None else fallback.p99_ms,
            parse_limit(errors, "--max-error-rate") if errors is not None else fallback.error_rate,
            misses if misses is not None else fallback.miss_rate,
        )
    if misses < 0:
        raise ConfigError("--max-miss-rate must be >= 0")
    return Thresholds(parse_limit(p99, "--p99-ms"), parse_limit(errors, "--max-error-rate"), misses)


def run_command(values: Mapping[str, Any], environ: Mapping[str, str]) -> int:
    from loadgen.cluster import cluster_target  # imported here: keeps `merge` light
    from loadgen.runner import execute

    cfg = run_config(values)

    def locate() -> tuple[Any, str]:  # after the targets answered: errors come first, alone
        return cluster_target(values["kube_api"], values["namespace"], environ)

    if cfg.loop == "uvloop":
        import uvloop

        report = uvloop.run(execute(cfg, locate))
    else:
        report = asyncio.run(execute(cfg, locate))
    _emit(report, cfg.report, cfg.print_json)
    return EXIT_PASSED if report["passed"] else EXIT_BREACHED


def merge_command(args: argparse.Namespace, values: Mapping[str, Any]) -> int:
    reports = [report for path in args.inputs for report in load_reports(path)]
    first = Thresholds.from_json(reports[0]["thresholds"])
    merged = merge_reports(reports, _thresholds(values, fallback=first))
    _emit(merged, values["output"], values["print_json"])
    return EXIT_PASSED if merged["passed"] else EXIT_BREACHED


def _emit(report: Mapping[str, Any], path: str | None, print_json: bool) -> None:
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render_table(report), flush=True)
    if path:
        print(f"report: {path}", flush=True)
    if print_json:
        print(LOG_PREFIX + json.dumps(report, separators=(",", ":")), flush=True)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    try:
        if args.command == "merge":
            return merge_command(args, resolve(args, MERGE_OPTIONS, environ))
        return run_command(resolve(args, RUN_OPTIONS, environ), environ)
    except ConfigError as exc:
        print(f"loadgen: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
