"""Every create carries an Idempotency-Key of its own; a create whose connection fails is sent
again with the same key, and the report counts the retries."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from tests.loadgen.stub_api import StubApi, run_loadgen
from tests.support.loopback_http import serve

KEY = re.compile(r'"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"')


async def run_creates(stub: StubApi, tmp_path: Path) -> dict[str, object]:
    runner, url = await serve(stub.app())
    report_path = tmp_path / "report.json"
    try:
        done = await run_loadgen(
            "run",
            f"--tasks-url={url}",
            f"--stats-url={url}",
            "--stages=20:1s",
            "--mix=create=1",
            "--no-cleanup",
            "--p99-ms=5000",  # the verdicts are not under test here
            f"--report={report_path}",
        )
    finally:
        await runner.cleanup()
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(report_path.read_text())
    assert "retries after a failed connection" in done.stdout + done.stderr
    return report


async def test_a_create_whose_connection_failed_is_sent_again_with_its_key(
    tmp_path: Path,
) -> None:
    stub = StubApi(cut_first_create=True)
    report = await run_creates(stub, tmp_path)
    create = report["endpoints"]["create"]  # type: ignore[index]
    sent = create["sent"]
    assert sent == 20
    assert create["ok"] == sent
    assert sum(create["errors"].values()) == 0
    assert create["retries"] == sent
    assert report["total"]["retries"] == sent  # type: ignore[index]
    # Each create has a key of its own, in the draft's quoted form, sent exactly twice.
    uses = Counter(stub.create_keys)
    assert len(uses) == sent
    assert set(uses.values()) == {2}
    assert all(key is not None and KEY.fullmatch(key) for key in uses)


async def test_creates_that_succeed_are_not_retried(tmp_path: Path) -> None:
    stub = StubApi()
    report = await run_creates(stub, tmp_path)
    assert report["total"]["retries"] == 0  # type: ignore[index]
    assert len(set(stub.create_keys)) == len(stub.create_keys) == 20
