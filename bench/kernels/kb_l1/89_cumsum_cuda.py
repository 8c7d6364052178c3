"""KernelBench L1/89 (cumsum), CUDA C++ candidate.

inclusive prefix sum along dim 1: one block per row walks the row in chunks of 1024 (coalesced loads), scans
each chunk with warp shuffles plus a scan of the 32 warp totals, and carries the running total into the next
chunk. 64-bit row offsets (32768 x 32768 elements).

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes

import torch

from sandbox.runtime import load_cuda

SRC = r"""
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
"""

_THREADS = 256
_MAX_BLOCKS = 8192


def _blocks(n: int) -> int:
    """Blocks for a grid-stride loop over n items: enough to fill an H100, at least one."""
    return max(1, min(-(-n // _THREADS), _MAX_BLOCKS))


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, computed by the kernels above."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        module = load_cuda(SRC)
        self.kernel = module.get_function("cumsum_rows")

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
