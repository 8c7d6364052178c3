"""KernelBench L1/26 (GELU), CUDA C++ candidate.

exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as F.gelu's default (approximate='none'). One grid-stride loop with
64-bit indices: KernelBench's input has up to 1.6e9 elements, so 32-bit indices or byte offsets would
overflow.

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes

import torch

from sandbox.runtime import load_cuda

SRC = r"""
extern "C" __global__ void gelu_f32(
    const float* __restrict__ x, float* __restrict__ y, long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
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

    def __init__(self) -> None:
        super().__init__()
        module = load_cuda(SRC)
        self.kernel = module.get_function("gelu_f32")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        self.kernel(grid=(_blocks(n), 1, 1), block=(_THREADS, 1, 1), args=(x, y, ctypes.c_int64(n)))
        return y
