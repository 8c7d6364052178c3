"""KernelBench L1/51 (Argmax_over_a_dimension), load_inline twin.

index of the first maximum over `dim` (int64, like torch.argmax); the first NaN counts as the max. One
thread per output element loops over the reduced dimension with stride `inner`, so a warp reads consecutive
addresses. 64-bit indices: the input has 2.1e9 elements.

The `load_inline` twin of 51_argmax_dim_cuda.py: the same kernels plus a torch C++ launcher, built in the
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
extern "C" __global__ void argmax_dim_f32(
    const float* __restrict__ x, long long* __restrict__ y, long long outer, long long r, long long inner)
{
    const long long total = outer * inner;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        const long long b = o / inner, c = o - b * inner;
        const float* p = x + b * r * inner + c;
        float m = -__int_as_float(0x7f800000); long long best = 0; bool nan = false;
        for (long long k = 0; k < r; ++k) {
            const float v = p[k * inner];
            if (!nan && (v != v || v > m)) {
                m = v; best = k; nan = (v != v);
            }
        }
        y[o] = best;
    }
}

torch::Tensor run(torch::Tensor x, int64_t dim)
{
    auto xc = x.contiguous();
    const int64_t d = dim < 0 ? dim + xc.dim() : dim;
    long long outer = 1, inner = 1;
    for (int64_t i = 0; i < d; ++i) outer *= xc.size(i);
    for (int64_t i = d + 1; i < xc.dim(); ++i) inner *= xc.size(i);
    const long long r = xc.size(d);
    auto sizes = xc.sizes().vec();
    sizes.erase(sizes.begin() + d);
    auto y = torch::empty(sizes, xc.options().dtype(torch::kLong));
    argmax_dim_f32<<<blocks_for(outer * inner), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.data_ptr<float>(), reinterpret_cast<long long*>(y.data_ptr<int64_t>()), outer, r, inner);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x, int64_t dim);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.ext = load_inline(
            name="kb_l1_51_argmax_dim",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous(), self.dim)
        return out
