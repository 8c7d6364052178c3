"""KernelBench L1/100 (HingeLoss), CUDA C++ candidate.

mean(clamp(1 - p * t, min=0)) where t (shape (C,)) broadcasts along the last dim of p: pass 1 grid-strides
over all elements with fp32 per-thread sums and a block tree into 1024 partial sums, pass 2 adds them in
double and divides by n, into a 0-dim tensor like the reference's. 64-bit indices (1.07e9 elements).

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

extern "C" __global__ void hinge_loss_partial(const float* __restrict__ p, const float* __restrict__ t,
                                          long long n, long long tn, float* __restrict__ partial)
{
    __shared__ float sh[32];
    float s = 0.0f;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float h = 1.0f - p[i] * t[i % tn]; s += h > 0.0f ? h : 0.0f;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
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
        self.partial = module.get_function("hinge_loss_partial")
        self.finish = module.get_function("finish_sum")

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = predictions.contiguous()
        t = targets.contiguous()
        n, tn = p.numel(), t.numel()
        partial = torch.empty(1024, device=p.device, dtype=torch.float32)
        out = torch.empty((), device=p.device, dtype=torch.float32)
        self.partial(
            grid=(1024, 1, 1),
            block=(_THREADS, 1, 1),
            args=(p, t, ctypes.c_int64(n), ctypes.c_int64(tn), partial),
        )
        self.finish(
            grid=(1, 1, 1),
            block=(_THREADS, 1, 1),
            args=(partial, ctypes.c_int64(1024), ctypes.c_double(1.0 / max(n, 1)), 0, out),
        )
        return out
