"""Containment on a GPU: a PTX kernel that never ends and one that reads an illegal address, each
followed by an honest kernel verified correct through the same executor (the worker side recovers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target
from kernelwright.settings import Settings
from sandbox.verify import VerifyOptions, verify_candidate
from sandbox.zygote_executor import make_executor

pytestmark = pytest.mark.gpu

# a guard branch that never leaves: the kernel spins until the worker is killed
_SPIN = """    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra DONE;
SPIN:
    bra SPIN;"""
# the output pointer replaced by an unmapped address
_ILLEGAL = "    cvta.to.global.u64 %rd2, %rd2;\n    mov.u64 %rd2, 0xdead00000000;"


def _verify_all(settings: Settings, examples: Path, sources: list[str], timeout_s: float) -> list[Outcome]:
    problem = Problem.from_file(examples / "problems" / "relu.py")
    options = VerifyOptions(draws=2, timing_trials=5, timing_warmup=1, timeout_s=timeout_s, device="cuda")

    async def scenario() -> list[Outcome]:
        settings.ensure_dirs()
        executor = make_executor(settings)
        outcomes = []
        try:
            for source in sources:
                verdict = await verify_candidate(
                    problem,
                    Candidate(target=Target.PTX, source=source),
                    settings=settings,
                    executor=executor,
                    options=options,
                )
                outcomes.append(verdict.outcome)
        finally:
            await executor.aclose()
        return outcomes

    return asyncio.run(scenario())


def test_a_kernel_that_never_terminates_then_an_honest_one(settings: Settings, examples: Path) -> None:
    honest = (examples / "kernels" / "relu_ptx.py").read_text()
    guard = "    setp.ge.u32 %p1, %r5, %r1;\n    @%p1 bra DONE;"
    assert guard in honest
    spinning = honest.replace(guard, _SPIN)
    outcomes = _verify_all(settings, examples, [spinning, honest], timeout_s=20)
    assert outcomes == [Outcome.TIMEOUT, Outcome.CORRECT]


def test_an_illegal_address_then_an_honest_one(settings: Settings, examples: Path) -> None:
    honest = (examples / "kernels" / "relu_ptx.py").read_text()
    line = "    cvta.to.global.u64 %rd2, %rd2;"
    assert line in honest
    illegal = honest.replace(line, _ILLEGAL)
    outcomes = _verify_all(settings, examples, [illegal, honest], timeout_s=60)
    assert outcomes == [Outcome.RUNTIME_ERROR, Outcome.CORRECT]
