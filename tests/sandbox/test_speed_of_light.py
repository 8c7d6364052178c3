"""The speed-of-light bound: counted work, the quarantine rule, and (on a GPU) a cheat it catches."""

from __future__ import annotations

import asyncio

import pytest
import torch

from kernelwright.domain import Candidate, Outcome, Problem, Target, Timing, Verdict
from kernelwright.settings import Settings
from sandbox.executor import LocalExecutor
from sandbox.runtime.bounds import problem_bound
from sandbox.verify import VerifyOptions, apply_speed_of_light, verify_candidate

PEAKS = {"bandwidth_gbs": 1000.0, "tensor_tflops": 100.0}


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(16, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t()


def test_bound_counts_inputs_parameters_outputs_and_flops() -> None:
    x = torch.zeros(64, 32)
    bound = problem_bound(_Linear(), [x], PEAKS)
    assert bound["bytes"] == (64 * 32 + 16 * 32 + 64 * 16) * 4
    assert bound["flops"] == 2 * 64 * 32 * 16
    assert bound["memory_ms"] == pytest.approx(bound["bytes"] / 1e12 * 1e3)
    assert bound["compute_ms"] == pytest.approx(2 * 64 * 32 * 16 / 1e14 * 1e3)
    assert bound["min_ms"] == max(bound["memory_ms"], bound["compute_ms"])


def _timed(candidate_ms: float, eager_ms: float) -> Verdict:
    return Verdict(
        outcome=Outcome.CORRECT,
        message="matches",
        candidate_timing=Timing(median_ms=candidate_ms, trials=10, method="cuda_events"),
        eager_timing=Timing(median_ms=eager_ms, trials=10, method="cuda_events"),
    )


BOUND = {"min_ms": 1.0, "bytes": 2e9, "flops": 0.0, "bandwidth_gbs": 2000.0, "tensor_tflops": 700.0}


def test_impossibly_fast_candidate_is_quarantined() -> None:
    verdict = apply_speed_of_light(_timed(0.05, 1.2), BOUND, 0.7)
    assert verdict.outcome == Outcome.QUARANTINED
    assert "speed-of-light" in verdict.message
    assert verdict.speed_of_light_ms == 1.0


def test_candidate_near_the_bound_stays_correct() -> None:
    verdict = apply_speed_of_light(_timed(0.8, 1.2), BOUND, 0.7)
    assert verdict.outcome == Outcome.CORRECT
    assert verdict.speed_of_light_ms == 1.0


def test_bound_the_reference_beats_is_reported_not_applied() -> None:
    verdict = apply_speed_of_light(_timed(0.05, 0.1), BOUND, 0.7)
    assert verdict.outcome == Outcome.CORRECT
    assert any("not applied" in note for note in verdict.baseline_notes)


BIG_RELU = """import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x)
def get_inputs():
    return [torch.randn(16384, 16384)]
def get_init_inputs():
    return []
"""

RELU_KERNEL = """import torch, triton
import triton.language as tl

@triton.jit
def relu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0), mask=mask)

@triton.jit
def touch_kernel(p_ptr):
    tl.store(p_ptr, 1.0)
"""

HONEST = (
    RELU_KERNEL
    + """
class ModelNew(torch.nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
"""
)

# Recognises inputs it has seen by a few sampled values and serves the stored output, launching a token
# kernel so that the launch counter is satisfied. Every correctness draw is new (and right); timed
# trials repeat one draw's values, so they are served from the cache, far below any honest time.
CONTENT_CACHE = (
    RELU_KERNEL
    + """
class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = {}
        self.token = None

    def forward(self, x):
        key = tuple(x.reshape(-1)[:8].tolist())
        if key in self.seen:
            if self.token is None:
                self.token = torch.empty(1, device=x.device)
            touch_kernel[(1,)](self.token)
            return self.seen[key]
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        self.seen[key] = y
        return y
"""
)


def _verify_gpu(settings: Settings, source: str) -> Verdict:
    problem = Problem(name="big_relu", source=BIG_RELU)
    opts = VerifyOptions(draws=3, timing_trials=30, compile_baseline=False, device="cuda")
    candidate = Candidate(target=Target.TRITON, source=source)
    return asyncio.run(
        verify_candidate(problem, candidate, settings=settings, executor=LocalExecutor(), options=opts)
    )


@pytest.mark.gpu
def test_gpu_content_cache_cheat_is_quarantined(settings: Settings) -> None:
    verdict = _verify_gpu(settings, CONTENT_CACHE)
    assert verdict.outcome == Outcome.QUARANTINED, verdict.message
    assert verdict.speed_of_light_ms is not None


@pytest.mark.gpu
def test_gpu_honest_kernel_is_not_quarantined(settings: Settings) -> None:
    verdict = _verify_gpu(settings, HONEST)
    assert verdict.outcome == Outcome.CORRECT, verdict.message
    assert verdict.speed_of_light_ms is not None
    assert verdict.candidate_timing is not None
    assert verdict.candidate_timing.median_ms >= verdict.speed_of_light_ms * 0.7
