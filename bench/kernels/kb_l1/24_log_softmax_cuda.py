"""KernelBench L1/24 (LogSoftmax), CUDA C++ candidate.

log_softmax over `dim` (the last one here): one block per row, max, then log of the sum of exp(x - max),
then x - max - log(sum). Row offsets are 64-bit: rows x cols exceeds 2^31 elements in these shapes.

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

extern "C" __global__ void log_softmax_rows(
    const float* __restrict__ x, float* __restrict__ y, long long cols)
{
    __shared__ float sh[32];
    const float* xr = x + (long long)blockIdx.x * cols;
    float* yr = y + (long long)blockIdx.x * cols;

    float m = -__int_as_float(0x7f800000);
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, xr[c]);
    m = block_max(m, sh);
    float s = 0.0f;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += expf(xr[c] - m);
    s = block_sum(s, sh);
    const float lse = m + logf(s);
    for (long long c = threadIdx.x; c < cols; c += blockDim.x)
        yr[c] = xr[c] - lse;

}
"""

_THREADS = 256
_MAX_BLOCKS = 8192


def _blocks(n: int) -> int:
    """Blocks for a grid-stride loop over n items: enough to fill an H100, at least one."""
    return max(1, min(-(-n // _THREADS), _MAX_BLOCKS))


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, computed by the kernels above."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim
        module = load_cuda(SRC)
        self.kernel = module.get_function("log_softmax_rows")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        if x.dim() < 1 or self.dim % x.dim() != x.dim() - 1:
            raise ValueError("this kernel normalises along the last dimension only")
        cols = x.shape[-1]
        rows = x.numel() // max(cols, 1)
        y = torch.empty_like(x)
        if rows > 0:
            self.kernel(grid=(rows, 1, 1), block=(1024, 1, 1), args=(x, y, ctypes.c_int64(cols)))
        return y
