"""`loadgen run` / `loadgen merge` as real processes: exit codes, env variables, report schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from aiohttp import web
from loadgen.cli import main
from loadgen.config import DEFAULT_MERGED, DEFAULT_REPORT

from tests.loadgen.stub_api import StubApi, free_port, run_loadgen
from tests.support.loopback_http import serve

SCHEMA = json.loads(files("loadgen").joinpath("report.schema.json").read_text())


@pytest.fixture
async def api_url() -> AsyncIterator[str]:
    runner, url = await serve(StubApi().app())
    yield url
    await runner.cleanup()


def _targets(url: str) -> list[str]:
    # generous lag and latency limits: a busy test machine must not fail runs that should pass
    return [f"--tasks-url={url}", f"--stats-url={url}", "--metrics-port=0", "--lag-bound-ms=500"]


async def test_passing_run_exits_0_and_writes_a_valid_report(api_url: str, tmp_path: Path) -> None:
    report_path = tmp_path / "out" / "report.json"
    done = await run_loadgen(
        "run",
        *_targets(api_url),
        "--stages=40:2s",
        "--p99-ms=2000",
        f"--report={report_path}",
        "--print-json",
    )
    assert done.returncode == 0, done.stderr
    assert "not in a Kubernetes cluster" in done.stderr
    assert "result: PASSED" in done.stdout
    report = json.loads(report_path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["total"]["sent"] == report["schedule"]["scheduled"] == 80
    assert report["total"]["ok"] == 80
    assert report["passed"] is True
    assert report["hpa"] is None
    assert all(e["slowest_traced"] == [] for e in report["endpoints"].values())  # none traced
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADGEN_REPORT "))
    assert json.loads(line.removeprefix("LOADGEN_REPORT "))["total"] == report["total"]
    _assert_table_matches(done.stdout, report)


def _assert_table_matches(stdout: str, report: dict[str, object]) -> None:
    """The stdout table: per endpoint sent, ok, errors, rate, p50..max; one line per verdict."""
    lines = stdout.splitlines()
    header = next(x for x in lines if x.startswith("endpoint "))
    columns = ["sent", "ok", "errors", "rate/s", "p50", "p90", "p99", "p99.9", "max"]
    assert header.split()[2:] == columns
    endpoints = report["endpoints"]
    assert isinstance(endpoints, dict)
    for name, e in [*endpoints.items(), ("TOTAL", report["total"])]:
        assert isinstance(e, dict)
        if not e["sent"]:
            continue
        row = next(x for x in lines if x.split()[:1] == [name]).split()
        sent, ok, errors, rate, *latency = row[-len(columns) :]
        assert (int(sent), int(ok)) == (e["sent"], e["ok"]), row
        kinds = ",".join(f"{kind}:{n}" for kind, n in e["errors"].items() if n)
        assert errors == (kinds or "0"), row
        assert float(rate) == pytest.approx(e["achieved_rate"], abs=0.051), row
        expected = [e["latency_ms"][k] for k in ("p50", "p90", "p99", "p99.9", "max")]
        assert [float(x) for x in latency] == pytest.approx(expected, abs=0.051), row
    verdicts = report["verdicts"]
    assert isinstance(verdicts, list)
    marks = [x for x in lines if x.startswith(("  PASS ", "  FAIL "))]
    assert len(marks) == len(verdicts)


async def test_a_traced_fraction_carries_sampled_traceparents_and_the_slowest_are_reported(
    tmp_path: Path,
) -> None:
    stub = StubApi()
    runner, url = await serve(stub.app())
    report_path = tmp_path / "traced.json"
    try:
        done = await run_loadgen(
            "run", *_targets(url), "--stages=50:2s", "--p99-ms=2000", "--seed=7",
            "--trace-fraction=0.2", f"--report={report_path}",
        )  # fmt: skip
    finally:
        await runner.cleanup()
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["config"]["trace_fraction"] == 0.2
    parents = stub.traceparents
    assert 5 <= len(parents) <= 40, len(parents)  # 100 requests, a fifth traced (seeded)
    fields = [p.split("-") for p in parents]
    assert all(len(f) == 4 and f[0] == "00" and f[3] == "01" for f in fields), parents
    assert all(len(f[1]) == 32 and len(f[2]) == 16 for f in fields), parents
    sent_ids = {f[1] for f in fields}
    assert len(sent_ids) == len(parents)  # one trace per request
    listed = [e for e in report["endpoints"].values() for e in e["slowest_traced"]]
    assert listed
    assert {e["trace_id"] for e in listed} <= sent_ids
    for endpoint in report["endpoints"].values():
        latencies = [e["latency_ms"] for e in endpoint["slowest_traced"]]
        assert latencies == sorted(latencies, reverse=True)
        assert len(latencies) <= 5
    assert "slowest traced requests:" in done.stdout
    assert listed[0]["trace_id"] in done.stdout


async def test_every_flag_reads_from_the_environment(api_url: str, tmp_path: Path) -> None:
    report_path = tmp_path / "env.json"
    env = {
        "LOADGEN_TASKS_URL": api_url,
        "LOADGEN_STATS_URL": api_url,
        "LOADGEN_METRICS_PORT": "0",
        "LOADGEN_STAGES": "20:1s",
        "LOADGEN_MIX": "stats=1",
        "LOADGEN_P99_MS": "2500,stats=2000",
        "LOADGEN_LAG_BOUND_MS": "500",
        "LOADGEN_REPORT": str(report_path),
        "LOADGEN_CLEANUP": "false",
    }
    done = await run_loadgen("run", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["endpoints"]["stats"]["sent"] == 20
    assert report["endpoints"]["list"]["sent"] == 0
    assert report["thresholds"]["p99_ms"] == {"default": 2500.0, "per_endpoint": {"stats": 2000.0}}
    # a flag beats its variable
    done = await run_loadgen("run", "--stages=10:1s", env=env)
    assert json.loads(report_path.read_text())["endpoints"]["stats"]["sent"] == 10


async def test_breached_threshold_exits_1(api_url: str, tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    done = await run_loadgen(
        "run", *_targets(api_url), "--stages=20:1s", "--p99-ms=0", f"--report={report_path}"
    )
    assert done.returncode == 1, done.stderr
    assert "result: FAILED" in done.stdout
    assert "FAIL p99_ms" in done.stdout
    assert json.loads(report_path.read_text())["passed"] is False


async def test_unreachable_target_exits_2_with_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = await run_loadgen("run", *_targets(url), f"--report={tmp_path / 'r.json'}")
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, errors
    assert "unreachable" in errors[0]
    assert url in errors[0]
    assert not (tmp_path / "r.json").exists()


async def test_api_not_ready_within_wait_ready_exits_2() -> None:
    async def down(_: web.Request) -> web.Response:
        return web.json_response({"status": "down"}, status=503)

    app = web.Application()
    app.router.add_get("/ready", down)
    runner, url = await serve(app)
    try:
        done = await run_loadgen("run", *_targets(url), "--wait-ready=1.5s", "--mix=stats=1")
    finally:
        await runner.cleanup()
    assert done.returncode == 2
    assert done.stderr.strip().endswith("not ready within 1.5s (last: HTTP 503)")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--stages=fast"], {}, "bad stage"),
        (["--profile=burst"], {}, "--profile"),
        (["--mix=reads=1"], {}, "bad mix item"),
        (["--tasks-url=localhost:8000"], {}, "--tasks-url"),
        (["--max-inflight=0"], {}, "--max-inflight"),
        (["--max-inflight=many"], {}, "--max-inflight"),
        ([], {"LOADGEN_MAX_INFLIGHT": "many"}, "LOADGEN_MAX_INFLIGHT"),
        ([], {"LOADGEN_CLEANUP": "perhaps"}, "LOADGEN_CLEANUP"),
        (["--no-such-flag"], {}, "unrecognized"),
    ],
)
def test_bad_configuration_exits_2(
    args: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["run", "--metrics-port=0", *args], environ=env)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1
    assert message in stderr


async def test_bad_configuration_process_exits_2() -> None:
    done = await run_loadgen("run", "--stages=fast")
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "loadgen: error: bad stage 'fast' (use RATE:DURATION, e.g. 100:30s)"
    )


async def test_merge_combines_runs_and_re_judges(api_url: str, tmp_path: Path) -> None:
    paths = []
    for index in range(2):
        path = tmp_path / f"pod{index}.log"
        done = await run_loadgen(
            "run",
            *_targets(api_url),
            "--stages=30:1s",
            "--p99-ms=2000",
            "--report=",
            "--print-json",
        )
        assert done.returncode == 0, done.stderr
        path.write_text(done.stdout)  # like `kubectl logs` of each pod
        paths.append(str(path))
    merged_path = tmp_path / "merged.json"
    done = await run_loadgen("merge", *paths, "-o", str(merged_path))
    assert done.returncode == 0, done.stderr
    merged = json.loads(merged_path.read_text())
    jsonschema.validate(merged, SCHEMA)
    assert merged["sources"] == 2
    assert merged["total"]["sent"] == 60
    assert merged["stages"][0]["rate"] == 60

    done = await run_loadgen("merge", *paths, "-o", str(merged_path), "--p99-ms=0")
    assert done.returncode == 1
    done = await run_loadgen("merge", str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr


REPO = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_default_outputs_are_git_ignored_in_this_repository() -> None:
    for path in (DEFAULT_REPORT, DEFAULT_MERGED):
        assert path.startswith(".run/"), path
        assert _git(REPO, "check-ignore", path).strip() == path


async def test_local_runs_leave_the_working_tree_clean(api_url: str, tmp_path: Path) -> None:
    """From a checkout's root with no --report: outputs land in .run/loadgen/, git sees nothing."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / ".gitignore", checkout / ".gitignore")
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".gitignore")
    _git(checkout, "commit", "-q", "-m", "ignore rules")

    done = await run_loadgen(
        "run", *_targets(api_url), "--stages=20:1s", "--p99-ms=2000", cwd=checkout
    )
    assert done.returncode == 0, done.stderr
    report = checkout / DEFAULT_REPORT
    assert f"report: {DEFAULT_REPORT}" in done.stdout
    jsonschema.validate(json.loads(report.read_text()), SCHEMA)

    done = await run_loadgen("merge", DEFAULT_REPORT, cwd=checkout)
    assert done.returncode == 0, done.stderr
    assert json.loads((checkout / DEFAULT_MERGED).read_text())["sources"] == 1

    assert sorted(p.name for p in checkout.iterdir()) == [".git", ".gitignore", ".run"]
    assert _git(checkout, "status", "--porcelain", "--untracked-files=all") == ""
