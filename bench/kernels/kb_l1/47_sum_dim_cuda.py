"""KernelBench L1/47 (Sum_reduction_over_a_dimension), CUDA C++ candidate.

sum over `dim`, keepdim=True. One thread per output element loops over the reduced dimension with stride
`inner`, so a warp reads consecutive addresses; fp32 accumulation over r = 4096 terms is well inside the
tolerance. 64-bit indices: the input has 2.1e9 elements.

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes
import math

import torch

from sandbox.runtime import load_cuda

SRC = r"""
extern "C" __global__ void sum_dim_f32(
    const float* __restrict__ x, float* __restrict__ y, long long outer, long long r, long long inner)
{
    const long long total = outer * inner;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        const long long b = o / inner, c = o - b * inner;
        const float* p = x + b * r * inner + c;
        float acc = 0.0f;
        for (long long k = 0; k < r; ++k) {
            const float v = p[k * inner];
            acc += v;
        }
        y[o] = acc;
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
        self.kernel = module.get_function("sum_dim_f32")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        shape = list(x.shape)
        d = self.dim % x.dim()
        outer, r, inner = math.prod(shape[:d]), shape[d], math.prod(shape[d + 1 :])
        y = torch.empty([*shape[:d], 1, *shape[d + 1 :]], device=x.device, dtype=x.dtype)
        n = outer * inner
        self.kernel(
            grid=(_blocks(n), 1, 1),
            block=(_THREADS, 1, 1),
            args=(x, y, ctypes.c_int64(outer), ctypes.c_int64(r), ctypes.c_int64(inner)),
        )
        return y
