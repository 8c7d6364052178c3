"""KernelBench L1/36 (RMSNorm), CUDA C++ candidate.

x / sqrt(mean(x^2 over dim 1) + eps) for (B, F, *): one thread per (b, spatial) position loops over the F
features with stride `inner` (coalesced across threads), twice: sum of squares, then write. 64-bit indices
(1.9e9 elements).

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes
import math

import torch

from sandbox.runtime import load_cuda

SRC = r"""
extern "C" __global__ void rms_norm_f32(const float* __restrict__ x, float* __restrict__ y, long long outer,
                                        long long f, long long inner, float eps)
{
    const long long total = outer * inner;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        const long long b = o / inner, c = o - b * inner;
        const long long base = b * f * inner + c;
        float s = 0.0f;
        for (long long k = 0; k < f; ++k) { const float v = x[base + k * inner]; s += v * v; }
        const float rms = sqrtf(s / (float)f + eps);
        for (long long k = 0; k < f; ++k) y[base + k * inner] = x[base + k * inner] / rms;
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

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        module = load_cuda(SRC)
        self.kernel = module.get_function("rms_norm_f32")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        shape = list(x.shape)
        outer, f, inner = shape[0], shape[1], math.prod(shape[2:])
        y = torch.empty_like(x)
        n = outer * inner
        self.kernel(
            grid=(_blocks(n), 1, 1),
            block=(_THREADS, 1, 1),
            args=(x, y, ctypes.c_int64(outer), ctypes.c_int64(f), ctypes.c_int64(inner), float(self.eps)),
        )
        return y
