"""`load_inline` candidates on a GPU are held to their own kernels: the guard profiles each forward call
and looks for a kernel the candidate's extension defines (`sandbox.runtime.extension_kernels`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.verify import VerifyOptions, verify_candidate
from sandbox.zygote_executor import make_executor

pytestmark = pytest.mark.gpu

_KERNEL = r"""
__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
"""
_TEMPLATE = '''import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
KERNEL
torch::Tensor relu_cuda(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    BODY
    return y;
}
"""
ext = load_inline(name="NAME", cpp_sources="torch::Tensor relu_cuda(torch::Tensor x);",
                  cuda_sources=cuda_src, functions=["relu_cuda"])


class ModelNew(torch.nn.Module):
    def forward(self, x):
        FORWARD
'''
_LAUNCH = "relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);"


def _source(name: str, *, kernel: str, body: str, forward: str) -> str:
    return (
        _TEMPLATE.replace("NAME", name)
        .replace("KERNEL", kernel)
        .replace("BODY", body)
        .replace("FORWARD", forward)
    )


HONEST = _source("kw_relu_honest", kernel=_KERNEL, body=_LAUNCH, forward="return ext.relu_cuda(x)")
# launches its kernel on the first call only, then lets ATen answer (static checks cannot see it)
FIRST_CALL_ONLY = _source(
    "kw_relu_once",
    kernel=_KERNEL,
    body="static bool done = false; if (!done) { done = true; " + _LAUNCH + " } else { y = at::relu(x); }",
    forward="return ext.relu_cuda(x)",
)
# honest while checked, then serves its last answer once called often (as the timing loop does)
CACHED_WHEN_TIMED = _source(
    "kw_relu_cached",
    kernel=_KERNEL,
    body="static int calls = 0; static torch::Tensor last; if (++calls <= 4 || !last.defined()) { "
    + _LAUNCH
    + " last = y; } else { y = last; }",
    forward="return ext.relu_cuda(x)",
)
# an extension with no kernel of its own: its C++ calls ATen
ATEN_IN_CPP = _source("kw_relu_aten", kernel="", body="y = at::relu(x);", forward="return ext.relu_cuda(x)")


def _verify(settings: Settings, examples: Path, sources: list[str]) -> list[Verdict]:
    problem = Problem.from_file(examples / "problems" / "relu.py")
    options = VerifyOptions(draws=2, timing_trials=5, timing_warmup=1, timeout_s=600, device="cuda")

    async def scenario() -> list[Verdict]:
        settings.ensure_dirs()
        executor = make_executor(settings)
        try:
            return [
                await verify_candidate(
                    problem,
                    Candidate(target=Target.CUDA, source=source),
                    settings=settings,
                    executor=executor,
                    options=options,
                )
                for source in sources
            ]
        finally:
            await executor.aclose()

    return asyncio.run(scenario())


def test_extension_candidates_must_launch_their_own_kernels(settings: Settings, examples: Path) -> None:
    honest, once, aten, cached = _verify(
        settings, examples, [HONEST, FIRST_CALL_ONLY, ATEN_IN_CPP, CACHED_WHEN_TIMED]
    )
    assert honest.outcome == Outcome.CORRECT, honest.message
    for cheat in (once, aten, cached):
        assert cheat.outcome == Outcome.HACK_SUSPECTED, cheat.message
        assert "launched no kernel of its own" in cheat.message
    assert "while being timed" in cached.message
