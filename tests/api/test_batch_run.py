"""Batches end to end on CPU: the engine in-process, and `kernelwright batch run` killed and restarted.

Problems are tiny elementwise ops in KernelBench layout; replies come from transcripts (the scripted
provider). Some replies are Triton kernels that the verifier really runs (Triton's CPU interpreter, in
sandboxed workers); the others hold no code, so those samples end fast with a compile error.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.trace import read_trace
from api.batch.engine import BatchRunner
from api.batch.providers import TranscriptSource
from api.batch.store import (
    BatchSpec,
    BatchStatus,
    create_batch,
    get_batch,
    list_samples,
    progress,
    request_cancel,
)
from api.batch.suite import SuiteSelection, load_suite
from api.db.batch_tables import BatchRow
from api.db.engine import Database
from api.services.migrations import upgrade
from kernelwright.domain import Target, TraceKind
from kernelwright.errors import UserError
from kernelwright.settings import Settings

REPO = Path(__file__).resolve().parents[2]

_OPS = [
    ("x * {c}", "x * {c}"),
    ("x + {c}", "x + {c}"),
    ("x - {c}", "x - {c}"),
    ("torch.relu(x) * {c}", "tl.maximum(x, 0.0) * {c}"),
]
_PROBLEM = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return EXPR


def get_inputs():
    return [torch.randn(4, 64)]


def get_init_inputs():
    return []
"""
_KERNEL = """Here is the kernel.

```python
import torch
import triton
import triton.language as tl


@triton.jit
def op_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, EXPR, mask=mask)


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        op_kernel[(triton.cdiv(n, 256),)](x, y, n, BLOCK=256)
        return y
```
"""


def make_suite(root: Path, count: int, kernel_every: int) -> tuple[Path, Path]:
    """`count` problems in `root/suite/level1/`, and a transcript per problem in `root/transcripts/`."""
    suite, transcripts = root / "suite", root / "transcripts"
    (suite / "level1").mkdir(parents=True)
    transcripts.mkdir()
    for index in range(count):
        torch_expr, triton_expr = _OPS[index % len(_OPS)]
        const = f"{1 + index * 0.5}"
        pid = index + 1
        (suite / "level1" / f"{pid}_Op{pid}.py").write_text(
            _PROBLEM.replace("EXPR", torch_expr.format(c=const))
        )
        text = (
            _KERNEL.replace("EXPR", triton_expr.format(c=const))
            if index % kernel_every == 0
            else "I am not able to write this kernel."
        )
        (transcripts / f"L1_{pid}.json").write_text(
            json.dumps({"model": "scripted", "replies": [{"text": text}]})
        )
    return suite, transcripts


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        home=tmp_path / "home",
        correctness_draws=2,
        timing_trials=0,
        verify_timeout_s=120,
        batch_heartbeat_s=0.2,
    )


def _db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    upgrade(url)
    return Database(url)


def test_engine_runs_every_sample_once_with_metrics(tmp_path: Path) -> None:
    suite, transcripts = make_suite(tmp_path, 3, kernel_every=2)  # L1/1 and L1/3 get kernels
    settings, db = _settings(tmp_path), _db(tmp_path)

    async def go() -> None:
        spec = BatchSpec(
            Target.TRITON,
            "scripted",
            ("m-a", "m-b"),
            samples=2,
            limit_llm=2,
            limit_gpu=1,
            options={"budgets": {"max_turns": 1}},
        )
        batch_id = await create_batch(db, spec, load_suite(SuiteSelection(str(suite))))
        # creating it again with the same id is a no-op: no sample doubles
        assert await create_batch(db, spec, load_suite(SuiteSelection(str(suite))), batch_id) == batch_id
        events: list[str] = []
        result = await BatchRunner(
            db, settings, providers=TranscriptSource(transcripts), listener=lambda e: events.append(e.kind)
        ).run(batch_id)
        assert result.status == BatchStatus.DONE and result.finished == 12 and result.resumed == 0
        assert events.count("started") == 12 and events.count("finished") == 12
        rows = await list_samples(db, batch_id)
        assert len(rows) == 12 and len({r.sample_key for r in rows}) == 12
        assert all(r.status == "done" and r.starts == 1 for r in rows)
        correct = {(r.problem_key, r.correct) for r in rows}
        assert correct == {("L1/1", True), ("L1/2", False), ("L1/3", True)}
        assert {r.outcome for r in rows if r.problem_key == "L1/2"} == {"compile_error"}
        assert all(r.tokens > 0 and r.cost_usd == 0.0 for r in rows)
        done = await progress(db, batch_id)
        assert done.per_problem == {key: {"done": 4} for key in ("L1/1", "L1/2", "L1/3")}
        assert (await get_batch(db, batch_id)).status == "done"
        # a finished batch run again does nothing
        again = await BatchRunner(db, settings, providers=TranscriptSource(transcripts)).run(batch_id)
        assert again.finished == 0
        await db.dispose()

    asyncio.run(go())


def test_finished_but_unrecorded_run_is_recorded_not_rerun(tmp_path: Path) -> None:
    """A process killed after a run ended but before its row said so: the checkpoint is the result."""
    from agent.context import Budgets
    from agent.providers.scripted import ScriptedProvider
    from agent.run import GenerationRequest, run_generation
    from api.batch.store import mark_started

    suite, transcripts = make_suite(tmp_path, 1, kernel_every=2)
    settings, db = _settings(tmp_path), _db(tmp_path)

    async def go() -> None:
        spec = BatchSpec(Target.TRITON, "scripted", ("m",), limit_llm=1, limit_gpu=1)
        entries = load_suite(SuiteSelection(str(suite)))
        batch_id = await create_batch(db, spec, entries)
        (sample,) = await list_samples(db, batch_id)
        await mark_started(db, sample.id)  # what the killed process had written
        provider = ScriptedProvider.from_transcript(transcripts / "L1_1.json")
        await run_generation(
            GenerationRequest(entries[0].problem, Target.TRITON, budgets=Budgets(max_turns=1)),
            settings=settings,
            provider=provider,
            run_id=sample.run_id,
        )
        result = await BatchRunner(db, settings, providers=TranscriptSource(transcripts)).run(batch_id)
        assert result.resumed == 1
        (row,) = await list_samples(db, batch_id)
        assert row.status == "done" and row.correct and row.starts == 2
        events = read_trace(settings.traces_dir / f"{row.run_id}.jsonl")
        assert [e.kind for e in events].count(TraceKind.RUN_STARTED) == 1  # nothing ran again
        await db.dispose()

    asyncio.run(go())


def test_cancel_and_runner_lease(tmp_path: Path) -> None:
    suite, transcripts = make_suite(tmp_path, 2, kernel_every=5)
    settings, db = _settings(tmp_path), _db(tmp_path)

    async def go() -> None:
        spec = BatchSpec(Target.TRITON, "scripted", ("m",), limit_llm=1, limit_gpu=1)
        batch_id = await create_batch(db, spec, load_suite(SuiteSelection(str(suite))))
        # another live process on this host holds the batch: refused with a clear error
        async with db.session() as session:
            row = await session.get(BatchRow, batch_id)
            assert row is not None
            row.runner = f"{os.uname().nodename}:{os.getppid()}"
        with pytest.raises(UserError, match="is being run by"):
            await BatchRunner(db, settings, providers=TranscriptSource(transcripts)).run(batch_id)
        cancelled = await request_cancel(db, batch_id)
        assert cancelled.cancel_requested and cancelled.status != "cancelled"  # the live runner stops it
        assert {r.status for r in await list_samples(db, batch_id)} == {"cancelled"}
        # a different spec under the same id is refused
        other = BatchSpec(Target.TRITON, "scripted", ("other",))
        with pytest.raises(UserError, match="different"):
            await create_batch(db, other, load_suite(SuiteSelection(str(suite))), batch_id)
        await db.dispose()

    asyncio.run(go())


def _count(db_path: Path, status: str) -> int:
    with sqlite3.connect(db_path, timeout=30) as conn:
        return int(
            conn.execute("SELECT count(*) FROM batch_samples WHERE status = ?", (status,)).fetchone()[0]
        )


@pytest.mark.slow
def test_killed_batch_resumes_with_every_sample_done_exactly_once(tmp_path: Path) -> None:
    """Acceptance: `kernelwright batch run` SIGKILLed mid-way; the same command then completes the batch."""
    problems = 24
    suite, transcripts = make_suite(tmp_path, problems, kernel_every=4)
    db_path = tmp_path / "service.sqlite"
    env = {
        **os.environ,
        "KERNELWRIGHT_HOME": str(tmp_path / "home"),
        "KERNELWRIGHT_CORRECTNESS_DRAWS": "2",
        "KERNELWRIGHT_TIMING_TRIALS": "0",
        "KERNELWRIGHT_BATCH_HEARTBEAT_S": "0.5",
    }
    command = [
        sys.executable, "-m", "api", "batch", "run", str(suite),
        "--model", "scripted", "--provider", "scripted", "--transcripts", str(transcripts),
        "--samples", "1", "--max-turns", "1", "--limit-llm", "2", "--limit-gpu", "1",
        "--batch-id", "killme", "--db", f"sqlite:///{db_path}", "--format", "json",
    ]  # fmt: skip
    started = time.monotonic()
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and first.poll() is None:
            if db_path.exists():
                try:
                    if _count(db_path, "done") >= 8 and _count(db_path, "running") >= 1:
                        break
                except sqlite3.OperationalError:
                    pass  # the tables are not created yet
            time.sleep(0.05)
        assert first.poll() is None, "the batch finished before it could be killed mid-way"
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    done_before = _count(db_path, "done")
    interrupted = _count(db_path, "running")
    assert 8 <= done_before < problems and interrupted >= 1
    with sqlite3.connect(db_path) as conn:
        before = {
            key: (finished, (tmp_path / "home" / "traces" / f"{run}.jsonl").read_bytes())
            for key, run, finished in conn.execute(
                "SELECT sample_key, run_id, finished_at FROM batch_samples WHERE status = 'done'"
            )
        }

    second = subprocess.run(
        command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    wall = time.monotonic() - started
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout[second.stdout.index("{") :])
    assert summary["status"] == "done" and summary["finished_now"] == problems - done_before
    assert summary["resumed"] >= 1

    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT sample_key, run_id, status, starts, finished_at, correct FROM batch_samples"
        ).fetchall()
    assert len(rows) == problems and len({r[0] for r in rows}) == problems
    assert {r[2] for r in rows} == {"done"}
    for key, run_id, _status, starts, finished, _correct in rows:
        events = read_trace(tmp_path / "home" / "traces" / f"{run_id}.jsonl")
        kinds = [e.kind for e in events]
        assert kinds.count(TraceKind.RUN_FINISHED) == 1, run_id  # every sample finished exactly once
        fresh = [e for e in events if e.kind == TraceKind.RUN_STARTED and not e.data.get("resumed")]
        if key in before:  # done before the kill: untouched by the restart
            assert starts == 1 and before[key] == (
                finished,
                (tmp_path / "home" / "traces" / f"{run_id}.jsonl").read_bytes(),
            )
        assert len(fresh) <= 2  # a second fresh start only where the kill came before the first checkpoint
    assert sum(r[5] for r in rows) == problems // 4  # every kernel-bearing sample verified correct
    assert wall < 120, f"took {wall:.0f} s"


def test_cli_run_status_export_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    suite, transcripts = make_suite(tmp_path, 2, kernel_every=2)
    monkeypatch.setenv("KERNELWRIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERNELWRIGHT_TIMING_TRIALS", "0")
    monkeypatch.chdir(tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 'cli.sqlite'}"]
    runner = CliRunner()
    ran = runner.invoke(
        app,
        [
            *("batch", "run", str(suite), "-m", "scripted", "--transcripts", str(transcripts)),
            *("--max-turns", "1", "--batch-id", "clibatch", "--format", "json", *db),
        ],
    )
    assert ran.exit_code == 0, ran.output
    status = runner.invoke(app, ["batch", "status", "clibatch", "--format", "json", *db])
    payload = json.loads(status.stdout[status.stdout.index("{") :])
    assert payload["progress"]["by_status"] == {"done": 2}
    assert payload["metrics"]["overall"]["correct"] == 1
    exported = runner.invoke(app, ["batch", "export", "clibatch", "--format", "csv", *db])
    assert exported.exit_code == 0 and exported.stdout.count("\n") == 3
    report = tmp_path / "report.html"
    assert runner.invoke(app, ["batch", "report", "clibatch", "--output", str(report), *db]).exit_code == 0
    assert "<svg" in report.read_text()
    missing = runner.invoke(app, ["batch", "status", "nope", *db])
    assert missing.exit_code == 2 and "no batch" in missing.output
    bad = runner.invoke(app, ["batch", "run", str(suite), "-m", "x", "--ids", "L1/77", *db])
    assert bad.exit_code == 2 and "L1/77" in bad.output


def test_a_batch_stops_when_its_key_reaches_the_spending_cap(tmp_path: Path) -> None:
    """Each sample's recorded cost is charged to the batch's key; at the cap the rest is cancelled."""
    from api.batch.engine import SampleEvent
    from api.batch.manager import stop_if_over_cap
    from api.services.keys import create_key, get_key, record_spend

    suite, transcripts = make_suite(tmp_path, 6, kernel_every=7)  # replies without code: fast samples
    for path in transcripts.glob("*.json"):
        data = json.loads(path.read_text())
        data["replies"][0]["cost_usd"] = 0.04
        path.write_text(json.dumps(data))
    settings, db = _settings(tmp_path), _db(tmp_path)

    async def go() -> None:
        key = (await create_key(db, "tight", spend_cap_usd=0.10)).record
        spec = BatchSpec(
            Target.TRITON,
            "scripted",
            ("m",),
            limit_llm=1,
            limit_gpu=1,
            owner=key.id,
            options={"budgets": {"max_turns": 1}},
        )
        batch_id = await create_batch(db, spec, load_suite(SuiteSelection(str(suite))))
        stops: list[bool] = []

        async def charge(event: SampleEvent) -> None:  # what the service's BatchManager does
            await record_spend(db, key.id, event.cost_usd, event.tokens)
            stops.append(await stop_if_over_cap(db, settings, batch_id, key.id))

        result = await BatchRunner(
            db, settings, providers=TranscriptSource(transcripts), after_sample=charge
        ).run(batch_id)
        assert result.status == BatchStatus.CANCELLED
        rows = await list_samples(db, batch_id)
        done = [r for r in rows if r.status == "done"]
        assert len(done) == 3 and all(r.cost_usd == pytest.approx(0.04) for r in done)  # $0.12 >= $0.10
        assert {r.status for r in rows if r not in done} == {"cancelled"}
        assert stops.count(True) == 1  # stopped once, at the sample that crossed the cap
        batch = await get_batch(db, batch_id)
        assert batch.status == "cancelled" and batch.error is not None
        assert "'tight' has spent $0.12 of its $0.10 cap" in batch.error and "keys create" in batch.error
        spent = await get_key(db, key.id)
        assert spent is not None and spent.spent_usd == pytest.approx(0.12)
        await db.dispose()

    asyncio.run(go())
