"""loadgen's fixed interface against the code and services/loadgen/README.md: every flag also
from its LOADGEN_* variable, the four profiles, the report's fields and the README's sections."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from loadgen.cli import MERGE_OPTIONS, RUN_OPTIONS, build_parser, env_name, resolve
from loadgen.config import DEFAULT_MERGED, DEFAULT_REPORT, PROFILES, parse_stages

REPO = Path(__file__).resolve().parents[2]
README = REPO / "services" / "loadgen" / "README.md"
COMPONENT = REPO / "deploy" / "components" / "loadgen"
SCHEMA = json.loads(files("loadgen").joinpath("report.schema.json").read_text())

# A valid, non-default text per flag (booleans: the opposite of the default).
SAMPLES = {
    "--tasks-url": "http://tasks.example:8000",
    "--stats-url": "http://stats.example:8000",
    "--profile": "spike",
    "--stages": "7:3s,9:1m",
    "--mix": "list=1,stats=3",
    "--p99-ms": "123,stats=45",
    "--max-error-rate": "0.25,create=0.5",
    "--max-miss-rate": "0.125",
    "--max-inflight": "17",
    "--lag-bound-ms": "12.5",
    "--timeout": "3s",
    "--client": "httpx",
    "--loop": "asyncio",
    "--seed": "42",
    "--trace-fraction": "0.05",
    "--max-own-tasks": "9",
    "--cleanup": "false",
    "--report": "/tmp/elsewhere.json",
    "--created-ids": "/tmp/created.txt",
    "--print-json": "true",
    "--metrics-port": "9999",
    "--progress-interval": "2s",
    "--wait-ready": "1m",
    "--observe-after": "90s",
    "--namespace": "elsewhere",
    "--kube-api": "http://127.0.0.1:8001",
    "--output": "/tmp/merged.json",
}
BOOLEAN_FLAGS = {"--cleanup", "--print-json"}


def _argv(command: str, flag: str, text: str) -> list[str]:
    extra = ["report.json"] if command == "merge" else []
    if flag in BOOLEAN_FLAGS:
        return [command, *extra, flag if text == "true" else "--no-" + flag[2:]]
    return [command, *extra, f"{flag}={text}"]


CASES = [("run", option) for option in RUN_OPTIONS] + [("merge", o) for o in MERGE_OPTIONS]


@pytest.mark.parametrize(
    ("command", "option"), CASES, ids=lambda c: c if isinstance(c, str) else c[0]
)
def test_every_flag_reads_from_its_variable(command: str, option: tuple[Any, ...]) -> None:
    flag = option[0]
    options = RUN_OPTIONS if command == "run" else MERGE_OPTIONS
    parser = build_parser()
    base = [command, "report.json"] if command == "merge" else [command]
    dest = flag.lstrip("-").replace("-", "_")
    default = resolve(parser.parse_args(base), options, {})[dest]
    from_flag = resolve(parser.parse_args(_argv(command, flag, SAMPLES[flag])), options, {})[dest]
    from_env = resolve(parser.parse_args(base), options, {env_name(flag): SAMPLES[flag]})[dest]
    assert from_env == from_flag != default, flag


def test_every_flag_is_documented_with_its_default() -> None:
    text = README.read_text()
    for flag, *_ in RUN_OPTIONS + MERGE_OPTIONS:
        if flag == "--output":
            assert "[-o FILE]" in text
            assert "`LOADGEN_OUTPUT`" in text
            continue
        assert f"`{flag}`" in text or f"[{flag} " in text, f"README does not document {flag}"
    assert "LOADGEN_" in text


def test_the_default_output_paths_are_documented() -> None:
    text = README.read_text()
    defaults = {
        "--report": DEFAULT_REPORT,
        "--output": DEFAULT_MERGED,
    }
    for options in (RUN_OPTIONS, MERGE_OPTIONS):
        for flag, _type, default, _help in options:
            if flag in defaults:
                assert default == defaults[flag], flag
    section = text[text.index("### Where the outputs go") : text.index("## The report")]
    for path in (DEFAULT_REPORT, DEFAULT_MERGED):
        assert f"`{path}`" in section, path
    assert "`.gitignore`" in section


def test_exit_codes_are_documented() -> None:
    text = README.read_text()
    assert re.search(
        r"\*\*0\*\* every threshold met, \*\*1\*\* a threshold breached, \*\*2\*\*", text
    )


def test_profiles_are_smoke_ramp_spike_soak_as_documented() -> None:
    assert set(PROFILES) == {"smoke", "ramp", "spike", "soak"}
    text = README.read_text()
    for name, stages in PROFILES.items():
        assert parse_stages(stages), name
        assert f"`{name}` {stages}" in text, f"README does not give {name}'s stages as {stages}"
    # ramp and spike change the rate; soak holds one rate for long.
    assert len({s.rate for s in parse_stages(PROFILES["ramp"])}) >= 3
    spike = [s.rate for s in parse_stages(PROFILES["spike"])]
    assert spike[0] == spike[-1] < max(spike)
    (soak,) = parse_stages(PROFILES["soak"])
    assert soak.duration >= 30 * 60


def test_the_job_runs_the_ramp_profile_and_its_documented_stages() -> None:
    (config,) = [
        d
        for d in yaml.safe_load_all((COMPONENT / "config.yaml").read_text())
        if d and d["kind"] == "ConfigMap"
    ]
    data = config["data"]
    assert data["LOADGEN_PROFILE"] == "ramp"
    assert data["LOADGEN_STAGES"] == PROFILES["ramp"]
    text = README.read_text()
    assert f"`{data['LOADGEN_STAGES']}` with the mix `{data['LOADGEN_MIX']}`" in text


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= _property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _property_names(value)
    return names


def test_readme_documents_every_report_field() -> None:
    text = README.read_text()
    report_section = text[text.index("## The report") : text.index("## In the cluster")]
    for name in sorted(_property_names(SCHEMA)):
        # `name`, `name[]`, `name.<key>` or {p50,p90,...}: the name as a word of its own
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", report_section), name
    assert "report.schema.json" in report_section


def test_readme_covers_running_watching_collecting_and_the_alternatives() -> None:
    text = README.read_text()
    for needle in (
        "skaffold run -p loadtest",
        "--force",
        "kubectl -n taskflow get hpa -w",
        "kubectl -n taskflow logs",
        "Grafana",
        "loadgen merge",
        "parallelism",
        "## Why this design rather than Locust, k6 or wrk2",
        "**Gains.**",
        "**Gives up.**",
        "### The default ramp",
    ):
        assert needle in text, needle
