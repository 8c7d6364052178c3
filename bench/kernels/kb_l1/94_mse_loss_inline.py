"""KernelBench L1/94 (MSELoss), load_inline twin.

mean((p - t)^2): pass 1 grid-strides over all elements with fp32 per-thread sums and a block tree into 1024
partial sums, pass 2 adds them in double and divides by n, into a 0-dim tensor like the reference's. 64-bit
indices (1.07e9 elements).

The `load_inline` twin of 94_mse_loss_cuda.py: the same kernels plus a torch C++ launcher, built in the
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

// Sum of `partial` (one block, in double for a well-rounded total), times `scale`, into out[0];
// with `take_sqrt` the square root of that.
extern "C" __global__ void finish_sum(const float* __restrict__ partial, long long parts, double scale,
                                      int take_sqrt, float* __restrict__ out)
{
    __shared__ double sh[32];
    double s = 0.0;
    for (long long i = threadIdx.x; i < parts; i += blockDim.x) s += (double)partial[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if (lane == 0) sh[wid] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < nw; ++w) t += sh[w];
        t *= scale;
        out[0] = take_sqrt ? (float)sqrt(t) : (float)t;
    }
}

extern "C" __global__ void mse_loss_partial(const float* __restrict__ p, const float* __restrict__ t,
                                          long long n, long long tn, float* __restrict__ partial)
{
    __shared__ float sh[32];
    float s = 0.0f;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float d = p[i] - t[i]; s += d * d;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

torch::Tensor run(torch::Tensor predictions, torch::Tensor targets)
{
    auto p = predictions.contiguous();
    auto t = targets.contiguous();
    const long long n = p.numel(), tn = t.numel();
    auto partial = torch::empty({1024}, p.options());
    auto out = torch::empty({}, p.options());
    auto stream = c10::cuda::getCurrentCUDAStream();
    mse_loss_partial<<<1024, 256, 0, stream>>>(p.data_ptr<float>(), t.data_ptr<float>(), n, tn,
                                                 partial.data_ptr<float>());
    finish_sum<<<1, 256, 0, stream>>>(partial.data_ptr<float>(), 1024, 1.0 / (double)(n > 0 ? n : 1), 0,
                                      out.data_ptr<float>());
    return out;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor predictions, torch::Tensor targets);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self) -> None:
        super().__init__()
        self.ext = load_inline(
            name="kb_l1_94_mse_loss",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(predictions.contiguous(), targets.contiguous())
        return out
