"""KernelBench L1/4 (Matrix_vector_multiplication), CUDA C++ candidate.

A (M, K) @ B (K, 1): one block per row, each thread a strided fp32 partial dot product, then a block tree
with warp shuffles. K = 1048576 and M * K > 2^31, so row offsets are 64-bit.

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

extern "C" __global__ void matvec_rows(const float* __restrict__ a, const float* __restrict__ b,
                                       float* __restrict__ y, long long k)
{
    __shared__ float sh[32];
    const float* ar = a + (long long)blockIdx.x * k;
    float s = 0.0f;
    for (long long c = threadIdx.x; c < k; c += blockDim.x) s = fmaf(ar[c], b[c], s);
    s = block_sum(s, sh);
    if (threadIdx.x == 0) y[blockIdx.x] = s;
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
        self.kernel = module.get_function("matvec_rows")

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        a = A.contiguous()
        b = B.contiguous()
        m, k = a.shape
        y = torch.empty((m, 1), device=a.device, dtype=a.dtype)
        if m > 0:
            self.kernel(grid=(m, 1, 1), block=(512, 1, 1), args=(a, b, y, ctypes.c_int64(k)))
        return y
