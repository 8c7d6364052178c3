"""KernelBench L1/37 (FrobeniusNorm), load_inline twin.

x / ||x||_F: pass 1 grid-strides over all 1.9e9 elements summing squares per block (fp32 per thread, block
tree), pass 2 adds the 1024 block sums in double and takes the root, pass 3 divides every element by that
device-side scalar (no host round trip).

The `load_inline` twin of 37_frobenius_norm_cuda.py: the same kernels plus a torch C++ launcher, built in
the worker with torch.utils.cpp_extension.load_inline as KernelBench baselines are, for
bench/verify_speed.py's comparison. kernelwright accepts such candidates on the cuda
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

extern "C" __global__ void sumsq_partial(const float* __restrict__ x, long long n,
                                         float* __restrict__ partial)
{
    __shared__ float sh[32];
    float s = 0.0f;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        s += v * v;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

extern "C" __global__ void divide_by(const float* __restrict__ x, const float* __restrict__ d,
                                     float* __restrict__ y, long long n)
{
    const float den = d[0];
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = x[i] / den;
}

torch::Tensor run(torch::Tensor x)
{
    auto xc = x.contiguous();
    const long long n = xc.numel();
    auto opts = xc.options();
    auto partial = torch::empty({1024}, opts);
    auto norm = torch::empty({1}, opts);
    auto y = torch::empty_like(xc);
    auto stream = c10::cuda::getCurrentCUDAStream();
    sumsq_partial<<<1024, 256, 0, stream>>>(xc.data_ptr<float>(), n, partial.data_ptr<float>());
    finish_sum<<<1, 256, 0, stream>>>(partial.data_ptr<float>(), 1024, 1.0, 1, norm.data_ptr<float>());
    divide_by<<<blocks_for(n), 256, 0, stream>>>(xc.data_ptr<float>(), norm.data_ptr<float>(),
                                                y.data_ptr<float>(), n);
    return y;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor x);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self) -> None:
        super().__init__()
        self.ext = load_inline(
            name="kb_l1_37_frobenius_norm",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(x.contiguous())
        return out
