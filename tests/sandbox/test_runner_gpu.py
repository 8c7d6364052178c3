"""On a GPU: a kernel with an illegal address breaks its context; the slot restarts and judges the next one.

Also a kernel that never terminates: it ends as a timeout and the slot stays healthy without a restart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.leases import discover_slots
from sandbox.runner import EvalJob, InProcessRunner
from sandbox.runner_slot import broken_gpu_context
from sandbox.verify import VerifyOptions

pytestmark = pytest.mark.gpu

OPTIONS = VerifyOptions(draws=2, timing_trials=5, timing_warmup=1, timeout_s=60, compile_baseline=False)


def _run_in_order(settings: Settings, jobs: list[EvalJob]) -> tuple[dict[str, Verdict], InProcessRunner]:
    async def scenario() -> tuple[dict[str, Verdict], InProcessRunner]:
        runner = InProcessRunner(settings, slots=discover_slots(settings)[:1])
        try:
            verdicts: dict[str, Verdict] = {}
            for one in jobs:
                verdicts.update(await runner.run_all([one]))
            return verdicts, runner
        finally:
            await runner.aclose()

    return asyncio.run(scenario())


def test_illegal_address_then_honest_kernel_on_the_same_slot(settings: Settings, examples: Path) -> None:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    honest = (examples / "kernels" / "softmax_triton.py").read_text()
    # a load 2**40 elements past the row: an illegal address on any GPU
    illegal = honest.replace("x_ptr + row * stride + cols", "x_ptr + row * stride + cols + (1 << 40)")
    assert illegal != honest
    jobs = [
        EvalJob("illegal", problem, Candidate(target=Target.TRITON, source=illegal), OPTIONS),
        EvalJob("honest", problem, Candidate(target=Target.TRITON, source=honest), OPTIONS),
    ]
    verdicts, runner = _run_in_order(settings.model_copy(update={"result_store": False}), jobs)
    assert verdicts["illegal"].outcome in (Outcome.RUNTIME_ERROR, Outcome.INFRASTRUCTURE)
    assert broken_gpu_context(verdicts["illegal"]), verdicts["illegal"].message
    assert verdicts["honest"].outcome == Outcome.CORRECT, verdicts["honest"].message
    assert verdicts["honest"].speedup_vs_eager is not None
    restarts = [e for e in runner.events if e.kind == "worker_restarted"]
    assert [e.job_key for e in restarts] == ["illegal"]
    assert "healthy after restart: True" in restarts[0].detail


def test_a_kernel_that_never_ends_times_out_and_the_slot_stays(settings: Settings, examples: Path) -> None:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    honest = (examples / "kernels" / "softmax_triton.py").read_text()
    # a loop with no side effect may be deleted by LLVM (an earlier `while row >= 0` was, on an H100): this
    # one stores and re-loads on every turn, and x == x holds for the finite inputs the problem draws
    spin = honest.replace(
        "    row = tl.program_id(0)\n",
        "    row = tl.program_id(0)\n"
        "    spin = tl.load(x_ptr + row * stride)\n"
        "    while spin == spin:\n"
        "        tl.store(y_ptr + row * stride, spin)\n"
        "        spin = tl.load(x_ptr + row * stride)\n",
    )
    assert spin != honest
    short = VerifyOptions(draws=2, timing_trials=0, timeout_s=20, compile_baseline=False)
    jobs = [
        EvalJob("spin", problem, Candidate(target=Target.TRITON, source=spin), short),
        EvalJob("honest", problem, Candidate(target=Target.TRITON, source=honest), OPTIONS),
    ]
    verdicts, runner = _run_in_order(settings.model_copy(update={"result_store": False}), jobs)
    assert verdicts["spin"].outcome == Outcome.TIMEOUT, verdicts["spin"].message
    assert verdicts["honest"].outcome == Outcome.CORRECT, verdicts["honest"].message
    assert not [e for e in runner.events if e.kind == "slot_retired"]
