"""The verifier on CPU: Triton candidates under the interpreter, in real sandboxed worker processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.executor import LocalExecutor
from sandbox.verify import VerifyOptions, verify_candidate

SCALE = """import torch
class Model(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor
    def forward(self, x):
        return x * self.factor
def get_inputs():
    return [torch.randn(8, 100)]
def get_init_inputs():
    return [3.0]
"""

TRITON_SCALE = """import torch, triton
import triton.language as tl

@triton.jit
def scale(x_ptr, y_ptr, n, factor, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * factor, mask=mask)

class ModelNew(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        scale[(triton.cdiv(n, 256),)](x, y, n, FACTOR_EXPR, BLOCK=256)
        return RESULT
"""


def _candidate(factor: str = "self.factor", result: str = "y", prelude: str = "") -> Candidate:
    source = TRITON_SCALE.replace("FACTOR_EXPR", factor).replace("RESULT", result)
    return Candidate(target=Target.TRITON, source=prelude + source)


def _verify(
    settings: Settings, candidate: Candidate, problem_source: str = SCALE, **options: float
) -> Verdict:
    problem = Problem(name="scale", source=problem_source)
    opts = VerifyOptions(draws=3, timing_trials=0, timeout_s=float(options.get("timeout_s", 120)))
    return asyncio.run(
        verify_candidate(problem, candidate, settings=settings, executor=LocalExecutor(), options=opts)
    )


def test_correct_triton_kernel(settings: Settings) -> None:
    verdict = _verify(settings, _candidate())
    assert verdict.outcome == Outcome.CORRECT, verdict.message
    assert len(verdict.draws) == 3 and all(d.passed for d in verdict.draws)
    assert verdict.speedup_vs_eager is None  # timing_trials=0: not timed


def test_mismatch_reports_errors_per_draw(settings: Settings) -> None:
    verdict = _verify(settings, _candidate(factor="self.factor + 0.01"))
    assert verdict.outcome == Outcome.MISMATCH
    assert "relative L2 error" in verdict.message
    assert verdict.draws and verdict.draws[0].max_abs_error is not None and verdict.draws[0].max_abs_error > 0


def test_wrong_shape(settings: Settings) -> None:
    assert _verify(settings, _candidate(result="y[:4]")).outcome == Outcome.WRONG_SHAPE


def test_wrong_dtype(settings: Settings) -> None:
    assert _verify(settings, _candidate(result="y.double()")).outcome == Outcome.WRONG_DTYPE


def test_returning_the_input_is_caught(settings: Settings) -> None:
    verdict = _verify(settings, _candidate(result="x.mul_(self.factor)"))
    assert verdict.outcome in (Outcome.MISMATCH, Outcome.HACK_SUSPECTED)


def test_crash_is_a_runtime_error(settings: Settings) -> None:
    verdict = _verify(
        settings, _candidate(result="y if False else (_ for _ in ()).throw(ValueError('boom'))")
    )
    assert verdict.outcome == Outcome.RUNTIME_ERROR and "boom" in verdict.message


def test_hard_crash_of_the_process(settings: Settings) -> None:
    verdict = _verify(settings, _candidate(result="__import__('os').abort()"))
    assert verdict.outcome == Outcome.RUNTIME_ERROR and "SIGABRT" in verdict.message


def test_hanging_candidate_times_out_and_is_killed(settings: Settings) -> None:
    verdict = _verify(settings, _candidate(result="[None for _ in iter(int, 1)]"), timeout_s=15)
    assert verdict.outcome == Outcome.TIMEOUT and "killed" in verdict.message


def test_candidate_never_sees_secrets(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("KERNELWRIGHT_GROQ_API_KEY", "gsk-secret")
    leak = (
        "import os\n"
        "assert not [k for k in os.environ if 'KEY' in k or 'KERNELWRIGHT' in k], dict(os.environ)\n"
    )
    verdict = _verify(settings, _candidate(prelude=leak))
    assert verdict.outcome == Outcome.CORRECT, verdict.message


def test_broken_reference_is_infrastructure_not_the_candidate(settings: Settings) -> None:
    broken = SCALE.replace("return x * self.factor", "raise RuntimeError('reference bug')")
    verdict = _verify(settings, _candidate(), problem_source=broken)
    assert verdict.outcome == Outcome.INFRASTRUCTURE and "reference bug" in verdict.message


def test_ptx_without_gpu_is_no_gpu(settings: Settings, examples: Path) -> None:
    if LocalExecutor is None:  # pragma: no cover
        pytest.skip()
    from sandbox.toolchains import detect_gpu_arch

    if detect_gpu_arch() is not None:
        pytest.skip("a GPU is visible here")
    candidate = Candidate(target=Target.PTX, source=(examples / "kernels" / "relu_ptx.py").read_text())
    problem = Problem.from_file(examples / "problems" / "relu.py")
    verdict = asyncio.run(verify_candidate(problem, candidate, settings=settings, executor=LocalExecutor()))
    assert verdict.outcome == Outcome.NO_GPU and "GPU" in verdict.message


def test_scratch_is_removed(settings: Settings) -> None:
    _verify(settings, _candidate())
    assert list(settings.scratch_dir.iterdir()) == []
