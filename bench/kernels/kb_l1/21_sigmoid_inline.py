"""KernelBench L1/21 (Sigmoid), load_inline twin.

1 / (1 + exp(-x)) with the accurate expf: exp overflows to inf for x << 0 and the quotient is then exactly
0, which is the right limit. One grid-stride loop with 64-bit indices: KernelBench's input has up to 1.6e9
elements, so 32-bit indices or byte offsets would overflow.

The `load_inline` twin of 21_sigmoid_cuda.py: the same kernels plus a torch C++ launcher, built in the
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
extern "C" __global__ void sigmoid_f32(
    const float* __restrict__ x, float* __restrict__ y, long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        y[i] = 1.0f / (1.0f + expf(-v));
    }
}

torch::Tensor run(torch::Tensor x)
{
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const long long n = xc.numel();
    sigmoid_f32<<<blocks_for(n), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self) -> None:
        super().__init__()
        self.ext = load_inline(
            name="kb_l1_21_sigmoid",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous())
        return out
