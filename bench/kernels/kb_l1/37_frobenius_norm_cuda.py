"""KernelBench L1/37 (FrobeniusNorm), CUDA C++ candidate.

x / ||x||_F: pass 1 grid-strides over all 1.9e9 elements summing squares per block (fp32 per thread, block
tree), pass 2 adds the 1024 block sums in double and takes the root, pass 3 divides every element by that
device-side scalar (no host round trip).

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes

import torch

from sandbox.runtime import load_cuda

SRC = r"""
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
"""

_THREADS = 256
_MAX_BLOCKS = 8192


def _blocks(n: int) -> int:
    """Blocks for a grid-stride loop over n items: enough to fill an H100, at least one."""
    return max(1, min(-(-n // _THREADS), _MAX_BLOCKS))


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, computed by the kernels above."""

    def __init__(self) -> None:
        super().__init__()
        module = load_cuda(SRC)
        self.partial = module.get_function("sumsq_partial")
        self.finish = module.get_function("finish_sum")
        self.divide = module.get_function("divide_by")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        n = x.numel()
        partial = torch.empty(1024, device=x.device, dtype=torch.float32)
        norm = torch.empty(1, device=x.device, dtype=torch.float32)
        y = torch.empty_like(x)
        self.partial(grid=(1024, 1, 1), block=(_THREADS, 1, 1), args=(x, ctypes.c_int64(n), partial))
        self.finish(
            grid=(1, 1, 1),
            block=(_THREADS, 1, 1),
            args=(partial, ctypes.c_int64(1024), ctypes.c_double(1.0), 1, norm),
        )
        self.divide(grid=(_blocks(n), 1, 1), block=(_THREADS, 1, 1), args=(x, norm, y, ctypes.c_int64(n)))
        return y
