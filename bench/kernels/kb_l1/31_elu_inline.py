"""KernelBench L1/31 (ELU), load_inline twin.

x for x > 0, alpha * expm1(x) otherwise (expm1f: accurate near 0). One grid-stride loop with 64-bit indices:
KernelBench's input has up to 1.6e9 elements, so 32-bit indices or byte offsets would overflow.

The `load_inline` twin of 31_elu_cuda.py: the same kernels plus a torch C++ launcher, built in the worker
with torch.utils.cpp_extension.load_inline as KernelBench baselines are, for bench/verify_speed.py's
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
extern "C" __global__ void elu_f32(
    const float* __restrict__ x, float* __restrict__ y, long long n, float alpha)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        y[i] = v > 0.0f ? v : alpha * expm1f(v);
    }
}

torch::Tensor run(torch::Tensor x, double p)
{
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const long long n = xc.numel();
    elu_f32<<<blocks_for(n), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.data_ptr<float>(), y.data_ptr<float>(), n, (float)p);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x, double p);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.ext = load_inline(
            name="kb_l1_31_elu",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous(), float(self.alpha))
        return out
