"""The job folder's quota: measured without following links, and enforced while a verification runs."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from kernelwright.domain import Outcome, Problem, Verdict
from kernelwright.settings import Settings
from sandbox.executor import LocalExecutor
from sandbox.scratch_quota import ScratchUsage, scratch_usage, watch_scratch
from sandbox.verify import VerifyOptions, verify_candidate
from tests.sandbox.test_verify import SCALE, _candidate


def test_usage_counts_allocated_bytes_and_entries_without_following_links(tmp_path: Path) -> None:
    root = tmp_path / "job"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(b"\1" * (1 << 20))
    (root / "sub" / "b.bin").write_bytes(b"\1" * (2 << 20))
    with (root / "sparse.bin").open("wb") as sparse:
        sparse.truncate(1 << 30)  # 1 GiB long, no block allocated: costs the disk nothing
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\1" * (4 << 20))
    (root / "link").symlink_to(outside)
    usage = scratch_usage(root)
    assert usage.entries == 5  # sub, a.bin, sub/b.bin, sparse.bin, link
    assert 3 << 20 <= usage.bytes < 4 << 20
    assert scratch_usage(root, stop_after_entries=2).entries == 3
    assert scratch_usage(tmp_path / "missing") == ScratchUsage(0, 0)  # gone already: nothing, no error


def test_the_watch_reports_the_first_usage_over_a_cap(tmp_path: Path) -> None:
    async def scenario() -> None:
        watch = asyncio.ensure_future(
            watch_scratch(tmp_path, max_bytes=1 << 20, max_entries=100, interval_s=0.01)
        )
        await asyncio.sleep(0.05)
        assert not watch.done()
        (tmp_path / "big.bin").write_bytes(b"\1" * (2 << 20))
        usage = await asyncio.wait_for(watch, 5)
        assert usage.bytes >= 2 << 20

    asyncio.run(scenario())


_MANY = """import time
for _i in range(5000):
    open(f"empty_{_i}", "w").close()
time.sleep(600)
"""


def _verify(settings: Settings, prelude: str, executor: LocalExecutor) -> Verdict:
    problem = Problem(name="scale", source=SCALE)
    opts = VerifyOptions(draws=2, timing_trials=0, timeout_s=90)
    return asyncio.run(
        verify_candidate(
            problem, _candidate(prelude=prelude), settings=settings, executor=executor, options=opts
        )
    )


def test_a_candidate_making_too_many_files_is_killed_and_the_next_one_verifies(settings: Settings) -> None:
    capped = settings.model_copy(update={"scratch_quota_entries": 1000})
    executor = LocalExecutor()
    verdict = _verify(capped, _MANY, executor)
    assert verdict.outcome == Outcome.RUNTIME_ERROR, verdict.message
    found = re.search(r"grew to (\d+) MiB in (\d+) entries", verdict.message)
    assert found and int(found[2]) > 1000, verdict.message  # the count gave it away, not the bytes
    assert "KERNELWRIGHT_SCRATCH_QUOTA_BYTES" in verdict.message
    assert list(capped.scratch_dir.iterdir()) == []  # its folder removed, its workers gone
    honest = _verify(capped, "", executor)
    assert honest.outcome == Outcome.CORRECT, honest.message
    assert os.listdir(capped.scratch_dir) == []
