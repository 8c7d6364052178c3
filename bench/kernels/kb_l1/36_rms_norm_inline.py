"""KernelBench L1/36 (RMSNorm), load_inline twin.

x / sqrt(mean(x^2 over dim 1) + eps) for (B, F, *): one thread per (b, spatial) position loops over the F
features with stride `inner` (coalesced across threads), twice: sum of squares, then write. 64-bit indices
(1.9e9 elements).

The `load_inline` twin of 36_rms_norm_cuda.py: the same kernels plus a torch C++ launcher, built in the
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
extern "C" __global__ void rms_norm_f32(const float* __restrict__ x, float* __restrict__ y, long long outer,
                                        long long f, long long inner, float eps)
{
    const long long total = outer * inner;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        const long long b = o / inner, c = o - b * inner;
        const long long base = b * f * inner + c;
        float s = 0.0f;
        for (long long k = 0; k < f; ++k) { const float v = x[base + k * inner]; s += v * v; }
        const float rms = sqrtf(s / (float)f + eps);
        for (long long k = 0; k < f; ++k) y[base + k * inner] = x[base + k * inner] / rms;
    }
}

torch::Tensor run(torch::Tensor x, double eps)
{
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const long long outer = xc.size(0), f = xc.size(1);
    long long inner = 1;
    for (int64_t i = 2; i < xc.dim(); ++i) inner *= xc.size(i);
    rms_norm_f32<<<blocks_for(outer * inner), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.data_ptr<float>(), y.data_ptr<float>(), outer, f, inner, (float)eps);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x, double eps);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.ext = load_inline(
            name="kb_l1_36_rms_norm",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous(), float(self.eps))
        return out
