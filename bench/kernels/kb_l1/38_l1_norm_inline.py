"""KernelBench L1/38 (L1Norm), load_inline twin.

x / mean(|x|, dim=1): one block per row, block sum of |x| in fp32. Row offsets are 64-bit: rows x cols
exceeds 2^31 elements in these shapes.

The `load_inline` twin of 38_l1_norm_cuda.py: the same kernels plus a torch C++ launcher, built in the
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
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. `sh` holds 32 floats.
__device__ float block_sum(float v, float* sh)
{
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        float w = lane < nw ? sh[lane] : 0.0f;
        w = warp_sum(w);
        if (lane == 0) sh[0] = w;
    }
    __syncthreads();
    const float r = sh[0];
    __syncthreads();
    return r;
}

// Max over the block; every thread gets the result. `sh` holds 32 floats.
__device__ float block_max(float v, float* sh)
{
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        float w = lane < nw ? sh[lane] : -__int_as_float(0x7f800000);
        w = warp_max(w);
        if (lane == 0) sh[0] = w;
    }
    __syncthreads();
    const float r = sh[0];
    __syncthreads();
    return r;
}

extern "C" __global__ void l1_norm_rows(
    const float* __restrict__ x, float* __restrict__ y, long long cols)
{
    __shared__ float sh[32];
    const float* xr = x + (long long)blockIdx.x * cols;
    float* yr = y + (long long)blockIdx.x * cols;

    float s = 0.0f;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += fabsf(xr[c]);
    s = block_sum(s, sh);
    const float mean = s / (float)cols;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = xr[c] / mean;
}

torch::Tensor run(torch::Tensor x)
{
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const long long cols = xc.size(-1);
    const long long rows = cols > 0 ? xc.numel() / cols : 0;
    if (rows > 0)
        l1_norm_rows<<<(unsigned)rows, 512, 0, c10::cuda::getCurrentCUDAStream()>>>(
            xc.data_ptr<float>(), y.data_ptr<float>(), cols);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self) -> None:
        super().__init__()
        self.ext = load_inline(
            name="kb_l1_38_l1_norm",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous())
        return out
