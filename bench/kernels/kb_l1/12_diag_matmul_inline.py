"""KernelBench L1/12 (Matmul_with_diagonal_matrices), load_inline twin.

diag(A) @ B as the broadcast A[i] * B[i, j]: a grid-stride elementwise kernel, row from i / cols.

The `load_inline` twin of 12_diag_matmul_cuda.py: the same kernels plus a torch C++ launcher, built in the
worker with torch.utils.cpp_extension.load_inline as KernelBench baselines are, for bench/verify_speed.py's
comparison. kernelwright accepts such candidates on the cuda
target with a warning (check.extension_build); their launches bypass the launch API, so the
guard finds their kernels by profiling each correctness call.
"""

from __future__ import annotations

import torch
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

static inline int blocks_for(long long n)
{
    long long b = (n + 255) / 256;
    return (int)(b < 1 ? 1 : (b > 8192 ? 8192 : b));
}
extern "C" __global__ void diag_scale_rows(const float* __restrict__ a, const float* __restrict__ b,
                                           float* __restrict__ y, long long n, long long cols)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = a[i / cols] * b[i];
}

torch::Tensor run(torch::Tensor A, torch::Tensor B)
{
    auto a = A.contiguous();
    auto b = B.contiguous();
    auto y = torch::empty_like(b);
    const long long n = b.numel(), cols = b.size(1) > 0 ? b.size(1) : 1;
    diag_scale_rows<<<blocks_for(n), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        a.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(), n, cols);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor A, torch::Tensor B);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self) -> None:
        super().__init__()
        self.ext = load_inline(
            name="kb_l1_12_diag_matmul",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(A.contiguous(), B.contiguous())
        return out
