"""KernelBench L1/89 (cumsum), load_inline twin.

inclusive prefix sum along dim 1: one block per row walks the row in chunks of 1024 (coalesced loads), scans
each chunk with warp shuffles plus a scan of the 32 warp totals, and carries the running total into the next
chunk. 64-bit row offsets (32768 x 32768 elements).

The `load_inline` twin of 89_cumsum_cuda.py: the same kernels plus a torch C++ launcher, built in the worker
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
extern "C" __global__ void cumsum_rows(const float* __restrict__ x, float* __restrict__ y, long long cols)
{
    __shared__ float warp_total[32];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    const float* xr = x + (long long)blockIdx.x * cols;
    float* yr = y + (long long)blockIdx.x * cols;
    float carry = 0.0f;
    for (long long start = 0; start < cols; start += blockDim.x) {
        const long long c = start + threadIdx.x;
        float v = c < cols ? xr[c] : 0.0f;
        for (int o = 1; o < 32; o <<= 1) {
            const float up = __shfl_up_sync(0xffffffffu, v, o);
            if (lane >= o) v += up;
        }
        if (lane == 31) warp_total[wid] = v;
        __syncthreads();
        if (wid == 0) {
            float w = lane < nw ? warp_total[lane] : 0.0f;
            for (int o = 1; o < 32; o <<= 1) {
                const float up = __shfl_up_sync(0xffffffffu, w, o);
                if (lane >= o) w += up;
            }
            warp_total[lane] = w;
        }
        __syncthreads();
        v += carry + (wid > 0 ? warp_total[wid - 1] : 0.0f);
        if (c < cols) yr[c] = v;
        carry += warp_total[nw - 1];
        __syncthreads();
    }
}

torch::Tensor run(torch::Tensor x)
{
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const long long cols = xc.size(-1);
    const long long rows = cols > 0 ? xc.numel() / cols : 0;
    if (rows > 0)
        cumsum_rows<<<(unsigned)rows, 1024, 0, c10::cuda::getCurrentCUDAStream()>>>(
            xc.data_ptr<float>(), y.data_ptr<float>(), cols);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.ext = load_inline(
            name="kb_l1_89_cumsum",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous())
        return out
