"""KernelBench L1/12 (Matmul_with_diagonal_matrices), CUDA C++ candidate.

diag(A) @ B as the broadcast A[i] * B[i, j]: a grid-stride elementwise kernel, row from i / cols.

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes

import torch

from sandbox.runtime import load_cuda

SRC = r"""
extern "C" __global__ void diag_scale_rows(const float* __restrict__ a, const float* __restrict__ b,
                                           float* __restrict__ y, long long n, long long cols)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = a[i / cols] * b[i];
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
        self.kernel = module.get_function("diag_scale_rows")

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        a = A.contiguous()
        b = B.contiguous()
        y = torch.empty_like(b)
        n, cols = b.numel(), b.shape[1]
        self.kernel(
            grid=(_blocks(n), 1, 1),
            block=(_THREADS, 1, 1),
            args=(a, b, y, ctypes.c_int64(n), ctypes.c_int64(max(cols, 1))),
        )
        return y
