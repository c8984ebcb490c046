"""The side-by-side run: datastores, the APIs as deployed and the ceiling app, each pinned to
the server core, measured one after another with wrk on the load core, then one table."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import psycopg
import yaml

from bench import wrk
from bench.datastores import REPO, Datastores, datastores, seeded_database
from bench.processes import LOAD_CORE, Server, pinned_server
from bench.profile import Profile, profile
from bench.report import Result, with_ratio
from bench.scenarios import API_CASES, CEILINGS, App, Case, cases_for
from bench.serve import SERVERS

CONFIG_MAP = REPO / "deploy" / "base" / "config.yaml"
ENTRYPOINTS = {App.TASKS: "tasks_api", App.TASKS_UNCACHED: "tasks_api",
               App.STATS: "stats_api", App.STATS_UNCACHED: "stats_api"}  # fmt: skip
SERVICE_NAMES = {"tasks_api": "tasks-api", "stats_api": "stats-api"}


@dataclass(frozen=True, slots=True)
class Options:
    rows: Sequence[int]
    seconds: float  # measured per case and repeat
    warmup: float
    connections: int
    repeat: int  # interleaved rounds; a case keeps its best round
    servers: Sequence[str]  # the ceiling runs on the fastest of these
    log: Callable[[str], None]
    api_server: str | None = None  # None: the APIs' own entrypoint (as deployed)
    pool_size: int | None = None  # None: DB_POOL_SIZE of the ConfigMap


def deployed_env() -> dict[str, str]:
    """The ConfigMap every API pod gets (pool, cache TTL, log level)."""
    config = yaml.safe_load(CONFIG_MAP.read_text())
    return {key: str(value) for key, value in config["data"].items()}


def base_env() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH"}
    return {key: value for key, value in os.environ.items() if key in keep}


def api_env(app: App, database_url: str, redis_url: str, opts: Options) -> dict[str, str]:
    module = ENTRYPOINTS[app]
    env = base_env() | deployed_env() | {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                                         "OTEL_SERVICE_NAME": SERVICE_NAMES[module]}  # fmt: skip
    if app in {App.TASKS_UNCACHED, App.STATS_UNCACHED}:
        env["CACHE_TTL"] = "0"
    if opts.pool_size is not None:
        env["DB_POOL_SIZE"] = str(opts.pool_size)
    return env


def api_command(app: App, opts: Options) -> list[str]:
    """`python -m tasks_api` as deployed, or its app factory on another server (a choice)."""
    module = ENTRYPOINTS[app]
    if opts.api_server is None:
        return ["-m", module]
    return ["-m", "bench.serve", "--server", opts.api_server, "--port", "{port}",
            f"{module}.app:create_app"]  # fmt: skip


def ceiling_command(server: str) -> list[str]:
    return ["-m", "bench.serve", "--server", server, "--port", "{port}",
            "bench.ceiling_app:create_app"]  # fmt: skip


def ceiling_env(database_url: str, redis_url: str) -> dict[str, str]:
    pool = deployed_env()
    size = int(pool["DB_POOL_SIZE"]) + int(pool["DB_MAX_OVERFLOW"])
    return base_env() | {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                         "BENCH_POOL": str(size)}  # fmt: skip


def measure(server: Server, case: Case, rows: int, opts: Options, path: str) -> Result:
    url = server.base_url + path
    wrk.run(url, seconds=opts.warmup, connections=opts.connections, core=LOAD_CORE,
            method=case.method, body=case.body)  # fmt: skip
    before = server.usage()
    load = wrk.run(url, seconds=opts.seconds, connections=opts.connections, core=LOAD_CORE,
                   method=case.method, body=case.body)  # fmt: skip
    after = server.usage()
    cpu = after.cpu_seconds - before.cpu_seconds
    return Result(
        key=case.key, endpoint=case.endpoint, rows=rows, cache=case.cache, rate=load.rate,
        p50_ms=load.p50_ms, p99_ms=load.p99_ms, errors=load.errors, requests=load.requests,
        cpu_ms=cpu / load.requests * 1000 if load.requests else 0.0,
        server_busy=cpu / load.seconds if load.seconds else 0.0,
        rss_mib=after.rss_bytes / 2**20,
    )  # fmt: skip


def fastest_server(database_url: str, redis_url: str, opts: Options) -> tuple[str, list[Result]]:
    """Constant JSON of the ceiling app on each candidate server; the fastest wins."""
    (json_case,) = [c for c in CEILINGS if c.key == "json"]
    results: list[Result] = []
    for name in opts.servers:
        with pinned_server(f"ceiling-{name}", ceiling_command(name),
                           ceiling_env(database_url, redis_url), "/json") as server:  # fmt: skip
            result = measure(server, json_case, 0, opts, json_case.path)
        results.append(replace(result, key=f"server:{name}", endpoint=f"constant JSON on {name}"))
        opts.log(f"  ceiling on {name}: {result.rate:,.0f} req/s constant JSON")
    best = max(zip(opts.servers, results, strict=True), key=lambda pair: pair[1].rate)[0]
    return best, results


def page_cursor(database_url: str, page: int, limit: int = 50) -> str:
    """The `next_cursor` that leads to page `page` of /tasks (default sort)."""
    from tasks_api.cursor import encode_cursor
    from tasks_api.queries import DEFAULT_SORT, Position

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT created_at, id FROM tasks ORDER BY created_at DESC, id DESC "
            "OFFSET %s LIMIT 1", ((page - 1) * limit - 1,),
        ).fetchone()  # fmt: skip
    assert row is not None, f"fewer than {(page - 1) * limit} tasks"
    return encode_cursor(DEFAULT_SORT, Position(row[0], row[1]))


@contextmanager
def servers_for(
    stores: Datastores, database_url: str, ceiling_server: str, apps: set[App], opts: Options
) -> Iterator[dict[App, Server]]:
    with ExitStack() as stack:
        running: dict[App, Server] = {}
        redis_url = stores.redis.url
        for app in sorted(apps):
            if app is App.CEILING:
                command = ceiling_command(ceiling_server)
                env, ready = ceiling_env(database_url, redis_url), "/json"
            else:
                command = api_command(app, opts)
                env, ready = api_env(app, database_url, redis_url, opts), "/ready"
            running[app] = stack.enter_context(pinned_server(app.value, command, env, ready))
        yield running


def run_rows(stores: Datastores, rows: int, ceiling_server: str, opts: Options) -> list[Result]:
    opts.log(f"== {rows:,} tasks: seeding")
    database_url = seeded_database(stores, rows)
    cases = cases_for(rows)
    paths = {c.key: c.path for c in cases}
    if any("{cursor}" in p for p in paths.values()):
        cursor = page_cursor(database_url, 10_000)
        paths = {k: p.replace("{cursor}", cursor) for k, p in paths.items()}
    by_key = {c.key: c for c in cases}
    # Each compared case right after its ceiling, reads before writes, `repeat` rounds.
    order: list[str] = []
    for case in cases:
        for key in (case.ceiling, case.key):
            if key is not None and key not in order:
                order.append(key)
    order.sort(key=lambda k: by_key[k].writes)
    best: dict[str, Result] = {}
    with servers_for(stores, database_url, ceiling_server, {c.app for c in cases}, opts) as running:
        for round_number in range(opts.repeat):
            for key in order:
                case = by_key[key]
                if case.writes and round_number < opts.repeat - 1:
                    continue  # writes grow the table: once, after every read
                result = measure(running[case.app], case, rows, opts, paths[key])
                opts.log(f"  {case.endpoint} [{case.app.value}]: {result.rate:,.0f} req/s, "
                         f"p50 {result.p50_ms:.2f} ms, CPU {result.cpu_ms:.3f} ms/req")  # fmt: skip
                if key not in best or result.rate > best[key].rate:
                    best[key] = result
    return [with_ratio(best[c.key], c, best.get(c.ceiling or "")) for c in cases]


def run(opts: Options) -> tuple[str, list[Result]]:
    """Every data set; returns the ceiling's server and the results in table order."""
    results: list[Result] = []
    with datastores() as stores:
        probe_url = seeded_database(stores, 0)
        opts.log("== which server is fastest (constant JSON, ceiling app)")
        ceiling_server, server_results = fastest_server(probe_url, stores.redis.url, opts)
        results.extend(server_results)
        for rows in opts.rows:
            results.extend(run_rows(stores, rows, ceiling_server, opts))
    return ceiling_server, results


def profile_case(key: str, rows: int, seconds: float, opts: Options) -> tuple[Case, Profile]:
    """py-spy on the server of one case under wrk load (`python -m bench --profile KEY`)."""
    (case,) = [c for c in cases_for(rows) if c.key == key]
    with datastores() as stores:
        database_url = seeded_database(stores, rows)
        with servers_for(stores, database_url, opts.servers[-1], {case.app}, opts) as running:
            return case, profile(running[case.app], case.path, seconds, opts.connections)


DATA_ACCESS = (
    ("/orm", "ORM session"),
    ("/core", "Core, pre-ping + BEGIN/ROLLBACK"),
    ("/core-lean", "Core, autocommit, no pre-ping"),
    ("/driver", "SQLAlchemy pool, asyncpg statement"),
    ("/raw", "asyncpg pool"),
)


def data_access(server: str, opts: Options) -> list[Result]:
    """The six count rows read five ways in one minimal app (bench/choices_app.py)."""
    rows = opts.rows[0]
    results: dict[str, Result] = {}
    with datastores() as stores:
        database_url = seeded_database(stores, rows)
        env = ceiling_env(database_url, stores.redis.url)
        command = ["-m", "bench.serve", "--server", server, "--port", "{port}",
                   "bench.choices_app:create_app"]  # fmt: skip
        with pinned_server("choices", command, env, "/raw") as running:
            for _ in range(opts.repeat):
                for path, name in DATA_ACCESS:
                    case = Case(path, f"six count rows: {name}", App.CEILING, path)
                    result = measure(running, case, rows, opts, path)
                    opts.log(f"  {case.endpoint}: {result.cpu_ms:.3f} ms/req")
                    if path not in results or result.rate > results[path].rate:
                        results[path] = result
    raw = results["/raw"]
    return [replace(r, ceiling="raw", ratio=r.rate / raw.rate) for r in results.values()]


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


__all__ = ["API_CASES", "CEILINGS", "SERVERS", "Options", "log_to_stderr", "run"]
