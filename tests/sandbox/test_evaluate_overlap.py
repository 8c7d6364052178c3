"""Verification workers start while a slow compile runs; the candidate is built only once it succeeded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import sandbox.evaluate
from kernelwright.domain import Candidate, CompileResult, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.evaluate import evaluate_candidate
from sandbox.executor import LocalExecutor
from sandbox.toolchains import find_ptxas
from sandbox.verify import CALLED_OFF, VerifyOptions, verify_candidate

OPTIONS = VerifyOptions(draws=2, timing_trials=0)


@pytest.fixture(autouse=True)
def always_speculate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.evaluate, "_SPECULATE_AFTER_S", 0.0)


def _evaluate(settings: Settings, examples: Path, source: str) -> tuple[CompileResult | None, Verdict]:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    return asyncio.run(
        evaluate_candidate(
            problem,
            Candidate(target=Target.TRITON, source=source),
            settings=settings,
            executor=LocalExecutor(),
            options=OPTIONS,
        )
    )


def test_overlapped_compile_then_verify_is_correct_and_stored(settings: Settings, examples: Path) -> None:
    source = (examples / "kernels" / "softmax_triton.py").read_text()
    compiled, verdict = _evaluate(settings, examples, source)
    assert compiled is not None and compiled.ok
    assert verdict.outcome == Outcome.CORRECT, verdict.message
    assert "gate" in verdict.phases_s  # the workers were up before the compile answered
    _, again = _evaluate(settings, examples, "# the same kernel, reformatted\n" + source)
    assert again.outcome == Outcome.CORRECT and again.from_store


def test_a_failed_compile_wins_over_the_speculative_workers(settings: Settings, examples: Path) -> None:
    if find_ptxas(settings) is None:
        pytest.skip("ptxas is not installed here")
    problem = Problem.from_file(examples / "problems" / "relu.py")
    source = (examples / "kernels" / "relu_ptx.py").read_text()
    broken = source.replace("max.f32 %f2, %f1, 0f00000000;", "max.f32 %f2, %f1, %f9;")  # undeclared
    assert broken != source
    compiled, verdict = asyncio.run(
        evaluate_candidate(
            problem,
            Candidate(target=Target.PTX, source=broken),
            settings=settings,
            executor=LocalExecutor(),
            options=OPTIONS.__class__(draws=2, timing_trials=0, device="cpu"),
        )
    )
    assert compiled is not None and not compiled.ok
    assert verdict.outcome == Outcome.COMPILE_ERROR
    scratch = settings.scratch_dir
    assert not scratch.exists() or not list(scratch.iterdir())  # no worker scratch is left behind


def test_a_gate_that_says_no_closes_the_workers_unused(settings: Settings, examples: Path) -> None:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    source = (examples / "kernels" / "softmax_triton.py").read_text()
    asked: list[bool] = []

    async def gate() -> bool:
        asked.append(True)
        return False

    verdict = asyncio.run(
        verify_candidate(
            problem,
            Candidate(target=Target.TRITON, source=source),
            settings=settings,
            executor=LocalExecutor(),
            options=OPTIONS,
            gate=gate,
        )
    )
    assert asked == [True]
    assert verdict.outcome == Outcome.INFRASTRUCTURE and verdict.message == CALLED_OFF
    assert not list(settings.scratch_dir.iterdir())
