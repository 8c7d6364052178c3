"""KernelBench-style `load_inline` candidates are accepted on the cuda target, with a warning."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kernelwright.domain import Candidate, Severity, Target
from kernelwright.settings import Settings
from sandbox.compile import compile_candidate
from sandbox.static_checks import blocking, check_candidate_source, uses_extension_build

INLINE = '''import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
torch::Tensor relu_cuda(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
ext = load_inline(name="relu_ext", cpp_sources="torch::Tensor relu_cuda(torch::Tensor x);",
                  cuda_sources=cuda_src, functions=["relu_cuda"])


class ModelNew(torch.nn.Module):
    def forward(self, x):
        return ext.relu_cuda(x)
'''


def test_load_inline_is_a_warning_on_cuda_and_an_error_on_ptx() -> None:
    assert uses_extension_build(INLINE)
    found = check_candidate_source(INLINE, Target.CUDA)
    assert not blocking(found)
    assert any(d.code == "check.extension_build" and d.severity == Severity.WARNING for d in found)
    assert any(
        d.code == "check.extension_build" for d in blocking(check_candidate_source(INLINE, Target.PTX))
    )


def test_load_inline_compiles_in_the_worker(settings: Settings, tmp_path: Path) -> None:
    result = asyncio.run(
        compile_candidate(Candidate(target=Target.CUDA, source=INLINE), settings, cache_dir=tmp_path)
    )
    assert result.ok and "cpp_extension" in result.toolchain
